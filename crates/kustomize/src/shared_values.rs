//! Label and annotation values that share one YAML node in kustomize.
//!
//! kustomize's label and annotation transformers make one YAML node per object and key and put
//! that node in every field where they *add* the key — `metadata.labels`, selectors, pod
//! templates; `metadata.annotations` and the templates' — while a field that had the key
//! already gets the value copied into its own node. Later writes copy over a node in place, so
//! a higher level setting that key in any one of those fields (its own `labels` on metadata
//! only, a strategic-merge patch, a replacement) changes all of them; a JSON patch rebuilds
//! the object from JSON and ends the sharing. Objects here are plain JSON, so which fields
//! share a node is kept beside them.

use serde_json::Value;

/// One shared node: the key and the JSON pointers of the maps that hold it.
#[derive(Debug, Clone)]
struct SharedNode {
    key: String,
    maps: Vec<String>,
}

/// The shared nodes of one object.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedValues(Vec<SharedNode>);

impl SharedValues {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Set `key` in the map at `map`, which has it already, and in every map sharing its node.
    pub fn write(&self, object: &mut Value, map: &str, key: &str, value: &Value) {
        set(object, map, key, value);
        let shared = self
            .0
            .iter()
            .find(|n| n.key == key && n.maps.iter().any(|m| m == map));
        for other in shared.into_iter().flat_map(|n| &n.maps) {
            set(object, other, key, value);
        }
    }

    /// One transformer run added `key` to all of `maps`: from now on they share one node, and
    /// none of them shares an older one (the key was not there, so neither was its node).
    pub fn share(&mut self, key: &str, maps: Vec<String>) {
        for node in self.0.iter_mut().filter(|n| n.key == key) {
            node.maps.retain(|m| !maps.contains(m));
        }
        if maps.len() > 1 {
            self.0.push(SharedNode {
                key: key.to_string(),
                maps,
            });
        }
        self.0.retain(|n| n.maps.len() > 1);
    }

    /// After an edit that writes into nodes in place (a strategic-merge patch, a replacement):
    /// a value it changed in one place shows in every place sharing that node, and the places
    /// it removed no longer share anything.
    pub fn settle(&mut self, before: &Value, object: &mut Value) {
        for node in &mut self.0 {
            node.maps.retain(|m| get(object, m, &node.key).is_some());
            let changed = node.maps.iter().find_map(|m| {
                let now = get(object, m, &node.key)?;
                (get(before, m, &node.key) != Some(now)).then(|| now.clone())
            });
            if let Some(value) = changed {
                for m in &node.maps {
                    set(object, m, &node.key, &value);
                }
            }
        }
        self.0.retain(|n| n.maps.len() > 1);
    }

    /// The object was rebuilt from JSON (a JSON patch): nothing is shared any more.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

fn get<'a>(object: &'a Value, map: &str, key: &str) -> Option<&'a Value> {
    object.pointer(map)?.as_object()?.get(key)
}

fn set(object: &mut Value, map: &str, key: &str, value: &Value) {
    if let Some(slot) = object
        .pointer_mut(map)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.get_mut(key))
    {
        *slot = value.clone();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "metadata": {"labels": {"env": "a"}},
            "spec": {"selector": {"matchLabels": {"env": "a"}},
                     "template": {"metadata": {"labels": {"env": "a"}}}}
        })
    }

    #[test]
    fn a_write_to_one_place_shows_in_every_place_sharing_the_node() {
        let mut object = deployment();
        let mut shared = SharedValues::default();
        shared.share(
            "env",
            vec![
                "/metadata/labels".into(),
                "/spec/selector/matchLabels".into(),
            ],
        );
        shared.write(&mut object, "/metadata/labels", "env", &json!("b"));
        assert_eq!(object["spec"]["selector"]["matchLabels"]["env"], "b");
        // The template's copy was never part of the node.
        assert_eq!(object["spec"]["template"]["metadata"]["labels"]["env"], "a");
    }

    #[test]
    fn an_in_place_edit_spreads_and_a_removal_leaves_the_node() {
        let mut object = deployment();
        let mut shared = SharedValues::default();
        shared.share(
            "env",
            vec![
                "/metadata/labels".into(),
                "/spec/selector/matchLabels".into(),
                "/spec/template/metadata/labels".into(),
            ],
        );
        let before = object.clone();
        object["spec"]["template"]["metadata"]["labels"]["env"] = json!("c");
        object["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("env");
        shared.settle(&before, &mut object);
        assert_eq!(object["spec"]["selector"]["matchLabels"]["env"], "c");
        assert!(object["metadata"]["labels"].get("env").is_none());
        // Re-adding the removed key later makes a node of its own.
        object["metadata"]["labels"]["env"] = json!("d");
        shared.write(&mut object, "/metadata/labels", "env", &json!("d"));
        assert_eq!(object["spec"]["selector"]["matchLabels"]["env"], "c");
    }

    #[test]
    fn a_key_added_again_leaves_its_older_node() {
        let mut object = deployment();
        let mut shared = SharedValues::default();
        shared.share(
            "env",
            vec![
                "/metadata/labels".into(),
                "/spec/selector/matchLabels".into(),
            ],
        );
        shared.share(
            "env",
            vec![
                "/metadata/labels".into(),
                "/spec/template/metadata/labels".into(),
            ],
        );
        shared.write(
            &mut object,
            "/spec/selector/matchLabels",
            "env",
            &json!("x"),
        );
        assert_eq!(object["metadata"]["labels"]["env"], "a");
        assert!(shared.0.len() == 1);
    }
}
