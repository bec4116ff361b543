//! The control socket: `/run/ldirectord.<CFGNAME>.sock`, a unix stream socket of mode
//! 0600 whose peers must be root (or the daemon's own user), speaking one JSON request
//! line and one JSON response line per connection.
//!
//! Requests: `{"command":"status"}` → the [`DaemonStatus`]; `{"command":"reload"}` → the
//! outcome of a reload, once it is done. Reads are capped at [`MAX_REQUEST`] bytes, and
//! each connection has [`SERVER_DEADLINE`] to send its request and take the answer, so a
//! stuck or hostile client costs one task for a few seconds at most.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::status::{DaemonStatus, ReloadOutcome};

/// A request is one short JSON line.
pub const MAX_REQUEST: u64 = 4096;
/// A status of 1,000 virtuals × 10 reals is a few MiB; anything beyond this is refused.
pub const MAX_RESPONSE: u64 = 64 << 20;
/// Time a connection may take on the server side, beyond the time to compute the answer.
pub const SERVER_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Reload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DaemonStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadOutcome>,
}

impl Response {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            status: None,
            reload: None,
        }
    }

    pub fn status(status: DaemonStatus) -> Self {
        Self {
            ok: true,
            error: None,
            status: Some(status),
            reload: None,
        }
    }

    pub fn reload(outcome: ReloadOutcome) -> Self {
        Self {
            ok: outcome.ok,
            error: outcome.error.clone(),
            status: None,
            reload: Some(outcome),
        }
    }
}

/// A request for the daemon's main loop, with the place to put the answer.
#[derive(Debug)]
pub struct Incoming {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot bind control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach the daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Exchange {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: unreadable answer: {detail}")]
    Protocol { path: PathBuf, detail: String },
}

/// The bound socket; dropping it leaves the file, [`ControlServer::remove`] deletes it.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `path` with mode 0600. An existing socket file there is replaced: the caller
    /// holds the pid file lock, so no live daemon of this name owns it.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        let bind_err = |source| ControlError::Bind {
            path: path.to_owned(),
            source,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt as _;
            if !meta.file_type().is_socket() {
                return Err(bind_err(std::io::Error::other(
                    "exists and is not a socket; refusing to remove it",
                )));
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        // The umask closes the window between bind and chmod in which anyone could
        // connect; it is process-wide, which is fine this early in start-up.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let listener = bound.map_err(bind_err)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until the task is dropped, handing each request to `requests`.
    pub async fn serve(self, requests: mpsc::Sender<Incoming>) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let _permit = permit;
                serve_one(stream, requests).await;
            });
        }
    }

    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Only root and the daemon's own user may talk to it; the file mode says the same, this
/// holds even if someone loosens the mode.
fn peer_allowed(stream: &UnixStream) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    stream
        .peer_cred()
        .map(|c| c.uid() == 0 || c.uid() == me)
        .unwrap_or(false)
}

async fn serve_one(mut stream: UnixStream, requests: mpsc::Sender<Incoming>) {
    if !peer_allowed(&stream) {
        let _ = write_response(&mut stream, &Response::error("permission denied")).await;
        return;
    }
    let read = tokio::time::timeout(SERVER_DEADLINE, read_request(&mut stream)).await;
    let response = match read {
        Err(_) => Response::error("timed out reading the request"),
        Ok(Err(message)) => Response::error(message),
        Ok(Ok(request)) => {
            let (reply, answer) = oneshot::channel();
            if requests.send(Incoming { request, reply }).await.is_err() {
                Response::error("the daemon is shutting down")
            } else {
                answer
                    .await
                    .unwrap_or_else(|_| Response::error("the daemon is shutting down"))
            }
        }
    };
    let _ = tokio::time::timeout(SERVER_DEADLINE, write_response(&mut stream, &response)).await;
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream).take(MAX_REQUEST);
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if !line.ends_with('\n') && reader.limit() == 0 {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

async fn write_response(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

/// The client side (the CLI has no runtime): sends `request`, waits up to `deadline`.
pub fn request(
    path: &Path,
    request: Request,
    deadline: Duration,
) -> Result<Response, ControlError> {
    let connect_err = |source| ControlError::Connect {
        path: path.to_owned(),
        source,
    };
    let exchange_err = |source| ControlError::Exchange {
        path: path.to_owned(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(connect_err)?;
    stream
        .set_read_timeout(Some(deadline))
        .map_err(exchange_err)?;
    stream
        .set_write_timeout(Some(deadline))
        .map_err(exchange_err)?;
    let mut line =
        serde_json::to_vec(&request).map_err(|e| exchange_err(std::io::Error::other(e)))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(exchange_err)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .take(MAX_RESPONSE)
        .read_line(&mut answer)
        .map_err(exchange_err)?;
    serde_json::from_str(answer.trim()).map_err(|e| ControlError::Protocol {
        path: path.to_owned(),
        detail: if answer.is_empty() {
            "no answer".to_owned()
        } else {
            e.to_string()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::DaemonStatus;

    fn sample_status() -> DaemonStatus {
        DaemonStatus::sample()
    }

    #[test]
    fn request_wire_format() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"command":"status"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"reload"}"#).unwrap(),
            Request::Reload
        );
    }

    #[tokio::test]
    async fn serves_status_and_refuses_junk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.t.sock");
        let server = ControlServer::bind(&path).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(server.serve(tx));
        tokio::spawn(async move {
            while let Some(incoming) = rx.recv().await {
                let answer = match incoming.request {
                    Request::Status => Response::status(sample_status()),
                    Request::Reload => Response::error("config invalid"),
                };
                let _ = incoming.reply.send(answer);
            }
        });
        let p = path.clone();
        let got = tokio::task::spawn_blocking(move || {
            request(&p, Request::Status, Duration::from_secs(5))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got.status, Some(sample_status()));

        // Junk and oversized requests get an error line, not a hang.
        let p = path.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for payload in [b"nonsense\n".to_vec(), vec![b'x'; 10_000]] {
                let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let _ = s.write_all(&payload);
                let mut answer = String::new();
                let _ = BufReader::new(s).read_line(&mut answer);
                out.push(answer);
            }
            out
        })
        .await
        .unwrap();
        for a in answers {
            let r: Response = serde_json::from_str(a.trim()).unwrap();
            assert!(!r.ok, "{a}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_dropped_after_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let server = ControlServer::bind(&path).unwrap();
        let (tx, _rx) = mpsc::channel(1);
        tokio::spawn(server.serve(tx));
        let mut client = UnixStream::connect(&path).await.unwrap();
        let mut answer = String::new();
        // Paused time jumps to the server's deadline once everything is idle.
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.contains("timed out"), "{answer}");
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sock");
        std::fs::write(&path, "precious").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(ControlServer::bind(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }
}
