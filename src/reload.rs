//! Config reload requests. `POST /reload` (with `server.enable_runtime_reload`) sends a
//! [`Request`]; the command's reload loop (main.rs), which also reloads on SIGHUP, reads and
//! compiles the file again and answers: `Ok` once the new config is valid (the running parts then
//! stop and start again with it), or why it is not (the old config keeps running).

use tokio::sync::{mpsc, oneshot};

/// One request to reload, with where to send the answer.
pub struct Request {
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Where reload requests go.
pub type Requests = mpsc::Sender<Request>;

/// Asks for a reload and waits for the answer; `Err` when the new config is refused (or nobody
/// listens any more: lokiship is stopping).
pub async fn request(requests: &Requests) -> Result<(), String> {
    let (reply, answer) = oneshot::channel();
    if requests.send(Request { reply }).await.is_err() {
        return Err("lokiship is stopping".into());
    }
    answer
        .await
        .unwrap_or_else(|_| Err("lokiship is stopping".into()))
}
