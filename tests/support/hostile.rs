//! Hostile servers: each misbehaves in one way, and each connection task still ends when
//! the client goes away.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{drain, read_head, response, serve};

/// Accepts and never answers.
pub async fn silent() -> SocketAddr {
    serve(|mut s| async move { drain(&mut s).await }).await
}

/// Answers one byte a second.
pub async fn drip() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_none() {
            return;
        }
        for &b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".iter() {
            if s.write_all(&[b]).await.is_err() {
                return;
            }
            // Stop as soon as the client has gone instead of sleeping blindly.
            let mut probe = [0u8; 1];
            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await
}

/// A 200 with a chunked body that never ends.
pub async fn endless_body() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_none() {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        while s.write_all(chunk.as_bytes()).await.is_ok() {}
    })
    .await
}

/// Resets the connection right after accepting it.
pub async fn reset() -> SocketAddr {
    serve(|s| async move {
        // Linger 0 makes close send RST; it never blocks.
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    })
    .await
}

/// Reads the request, then resets (RST mid-exchange).
pub async fn reset_after_request() -> SocketAddr {
    serve(|mut s| async move {
        let _ = read_head(&mut s).await;
        // Linger 0 makes close send RST; it never blocks.
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    })
    .await
}

/// Speaks plain text where TLS is expected.
pub async fn garbage_instead_of_tls() -> SocketAddr {
    serve(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS\x00\xff\xfe")
            .await;
        drain(&mut s).await;
    })
    .await
}

pub async fn status_500() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(&response("500 Internal Server Error", &[], "oops"))
                .await;
        }
    })
    .await
}

/// Redirects somewhere else (not the real server).
pub async fn redirect_away() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(&response(
                    "301 Moved Permanently",
                    &["Location: http://elsewhere.example/"],
                    "",
                ))
                .await;
        }
    })
    .await
}

/// A 200 page without the expected text.
pub async fn wrong_page() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(&response("200 OK", &[], "maintenance page"))
                .await;
        }
    })
    .await
}

/// 1 MiB of headers.
pub async fn huge_headers() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_none() {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
            return;
        }
        let line = format!("X-Padding: {}\r\n", "p".repeat(1000));
        for _ in 0..1024 {
            if s.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"Content-Length: 0\r\n\r\n").await;
    })
    .await
}

/// Reads the request, closes its sending side without answering, waits for the client.
pub async fn half_close() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s.shutdown().await;
            drain(&mut s).await;
        }
    })
    .await
}
