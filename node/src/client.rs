//! A minimal HTTP/1.1 client for our own JSON endpoints (demo, tests, bench):
//! one request per connection, bounded by a timeout.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A free loopback address (bind to port 0, read it, release it).
pub fn free_local_addr() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub async fn request(addr: &str, method: &str, path: &str, timeout: Duration) -> std::io::Result<HttpReply> {
    request_with(addr, method, path, &[], timeout).await
}

/// [`request`] with extra request headers (`name`, `value`).
pub async fn request_with(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], timeout: Duration) -> std::io::Result<HttpReply> {
    tokio::time::timeout(timeout, async {
        let mut s = TcpStream::connect(addr).await?;
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        parse(&buf).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response"))
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP request timed out"))?
}

pub async fn get(addr: &str, path: &str) -> std::io::Result<HttpReply> {
    request(addr, "GET", path, Duration::from_secs(30)).await
}

fn parse(buf: &[u8]) -> Option<HttpReply> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_string() };
    Some(HttpReply { status, headers, body })
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        s = rest.get(n + 2..)?;
    }
}

/// Waits until every partition the node reports is consumed to its end offset and
/// at least `min_total` records are consumed overall; `false` on deadline.
pub async fn wait_consumed(addr: &str, min_total: i64, deadline: Duration) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        if let Ok(r) = get(addr, "/v1/cluster").await {
            if let Some(v) = r.json() {
                let parts = v["partitions"].as_array().cloned().unwrap_or_default();
                let total: i64 = parts.iter().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum();
                let done = !parts.is_empty()
                    && parts.iter().all(|p| p["state"] == "active" && p["end_offset"].as_i64().is_some_and(|e| p["consumed_offset"].as_i64() == Some(e)));
                if done && total >= min_total {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
