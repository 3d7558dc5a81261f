//! A hand-written HTTP/1.1 exchange over plain TCP, for requests a client
//! library would not send as they are (a declared body never sent, a
//! chunked body cut short): only the answer's status is read.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `request` (head and whatever body) to `addr` and returns the
/// status of the answer, read up to the end of its head. Panics after
/// `wait` or when what comes back is not HTTP.
pub async fn status_of(addr: SocketAddr, request: &[u8], wait: Duration) -> u16 {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await? {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(wait, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr} within {wait:?}"))
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: «{text}»"))
}
