//! Tables as kubectl prints them: columns as wide as their widest cell, three spaces apart,
//! so long names never run into the next column.

pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let mut t = Table::new(&["NAME", "STATUS"]);
        t.row(vec![
            "a-very-long-application-name-indeed".into(),
            "Synced".into(),
        ]);
        t.row(vec!["b".into(), "OutOfSync".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        let column = lines[1].find("Synced").unwrap();
        assert_eq!(lines[0].find("STATUS"), Some(column));
        assert_eq!(lines[2].find("OutOfSync"), Some(column));
        assert!(lines[1][..column].ends_with("   "));
    }
}
