//! A forward HTTP proxy on 127.0.0.1, as a corporate proxy behaves: absolute-form requests
//! (`GET http://host/path`) forwarded, `CONNECT host:port` tunnelled. It keeps the target of
//! every request, so a test can tell what went through it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct HttpProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl HttpProxy {
    pub fn start() -> HttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &keep);
                });
            }
        });
        HttpProxy { url, seen }
    }

    /// The targets asked for so far: `host:port` of a tunnel, the URL of a forwarded request.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One client connection: one request forwarded (then the connection closes), or a tunnel.
fn serve(client: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v)) => (m.to_string(), t.to_string(), v.to_string()),
            _ => return Ok(()),
        };
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if !lower.starts_with("proxy-") && !lower.starts_with("connection:") {
                headers.push(line);
            }
        }
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(target.clone());
        if method == "CONNECT" {
            let upstream = TcpStream::connect(&target)?;
            let mut client = reader.into_inner();
            client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            return pipe(client, upstream);
        }
        let rest = target.strip_prefix("http://").unwrap_or(&target);
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut upstream = TcpStream::connect(host)?;
        let mut request = format!("{method} {path} {version}\r\n");
        for h in &headers {
            request.push_str(h);
        }
        request.push_str("Connection: close\r\n\r\n");
        upstream.write_all(request.as_bytes())?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        upstream.write_all(&body)?;
        // The answer, to the end (the upstream closes), then this connection closes too.
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer)?;
        let mut client = reader.into_inner();
        client.write_all(&answer)?;
        Ok(())
    }
}

fn pipe(client: TcpStream, upstream: TcpStream) -> std::io::Result<()> {
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
    Ok(())
}
