//! One WebSocket connection: a reader task feeding the hub, a writer task draining the
//! connection's queue in batches (one flush per batch), and the close handshake.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use roomcast_core::{ConnId, Violation};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use crate::driver::{Arrival, Outbox, ToHub};
use crate::options::Options;
use crate::transport::message::{Incoming, WsError, WsMessage};
use crate::transport::queue::{self, Item};
use crate::transport::tracker::Tracker;

/// Runs one upgraded socket until it closes. `commands` leads to the hub task.
pub(crate) async fn serve<S, M, E>(
    socket: S,
    commands: mpsc::Sender<ToHub>,
    tracker: Arc<Tracker>,
    options: &Options,
    arrival: Option<Box<Arrival>>,
) where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
    M: WsMessage,
    E: WsError,
{
    let conn = ConnId::from_uuid(uuid::Uuid::new_v4());
    let (frames_tx, frames) = queue::queue(options.queue_frames);
    let (close_tx, close) = oneshot::channel();
    let outbox = Outbox::Queue { frames: frames_tx, close: close_tx };
    // Counted before the hub can take it: once its client has `connected`, the next upgrade sees
    // it among the live sockets (`max_connections`).
    tracker.enter();
    if commands.send(ToHub::Connect { conn, outbox, arrival }).await.is_err() {
        tracker.leave();
        return;
    }
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(
        sink,
        frames,
        close,
        options.batch_frames.max(1),
        options.close_timeout,
    ));
    let writer_done = tokio::select! {
        () = read_loop(&mut stream, conn, &commands, options.echo) => false,
        _ = &mut writer => true,
    };
    let _ = commands.send(ToHub::Disconnect(conn)).await;
    if writer_done {
        // Our close frame is out (or the peer is gone). As RFC 6455 asks, let the peer answer
        // with its own close before the TCP connection is dropped, within `close_timeout`.
        let _ = timeout(options.close_timeout, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    } else {
        // The hub drops the outbox on Disconnect; the writer then flushes what it can and ends.
        if timeout(options.close_timeout + Duration::from_secs(1), &mut writer).await.is_err() {
            writer.abort();
        }
    }
    tracker.leave();
}

async fn read_loop<St, M, E>(
    stream: &mut St,
    conn: ConnId,
    commands: &mpsc::Sender<ToHub>,
    echo: bool,
) where
    St: Stream<Item = Result<M, E>> + Unpin,
    M: WsMessage,
    E: WsError,
{
    while let Some(item) = stream.next().await {
        let command = match item {
            Ok(message) => match message.incoming() {
                Incoming::Text(payload) if echo => ToHub::EchoText { conn, payload },
                Incoming::Binary(payload) if echo => ToHub::EchoBinary { conn, payload },
                Incoming::Text(frame) => ToHub::Frame { conn, frame },
                Incoming::Binary(_) => ToHub::Violation { conn, violation: Violation::Binary },
                Incoming::Alive => ToHub::Alive(conn),
                Incoming::Close => return,
                Incoming::Other => continue,
            },
            Err(e) => match e.violation() {
                // The transport refused what the client sent; the hub decides the close, and the
                // stream is not readable after this.
                Some(violation) => {
                    let _ = commands.send(ToHub::Violation { conn, violation }).await;
                    return;
                }
                None => {
                    tracing::debug!(%conn, error = %e, "socket read ended");
                    return;
                }
            },
        };
        // Waits while the hub is busy: backpressure reaches the client through TCP.
        if commands.send(command).await.is_err() {
            return;
        }
    }
}

async fn write_loop<Si, M>(
    mut sink: Si,
    frames: queue::Receiver,
    mut close: oneshot::Receiver<(u16, String)>,
    batch: usize,
    close_timeout: Duration,
) where
    Si: Sink<M> + Unpin,
    M: WsMessage,
{
    let mut pending: VecDeque<Item> = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            closing = &mut close => {
                finish(&mut sink, &frames, &mut pending, closing.ok(), close_timeout).await;
                return;
            }
            open = frames.take_all(&mut pending) => {
                if !open {
                    finish(&mut sink, &frames, &mut pending, None, close_timeout).await;
                    return;
                }
            }
        }
        // A client that stops reading stalls these writes; the hub then overflows the queue,
        // and the close signal interrupts the stalled write.
        while !pending.is_empty() {
            tokio::select! {
                biased;
                closing = &mut close => {
                    finish(&mut sink, &frames, &mut pending, closing.ok(), close_timeout).await;
                    return;
                }
                written = write_batch(&mut sink, &mut pending, batch) => {
                    if written.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Writes up to `batch` of the pending frames, then flushes once.
async fn write_batch<Si, M>(
    sink: &mut Si,
    pending: &mut VecDeque<Item>,
    batch: usize,
) -> Result<(), Si::Error>
where
    Si: Sink<M> + Unpin,
    M: WsMessage,
{
    for _ in 0..batch {
        let Some(out) = pending.pop_front() else { break };
        if let Some(message) = to_message(out) {
            sink.feed(message).await?;
        }
    }
    sink.flush().await
}

/// Sends what is still queued and the close frame (if the hub closed the connection), within
/// `close_timeout`, then closes the sink.
async fn finish<Si, M>(
    sink: &mut Si,
    frames: &queue::Receiver,
    pending: &mut VecDeque<Item>,
    close: Option<(u16, String)>,
    close_timeout: Duration,
) where
    Si: Sink<M> + Unpin,
    M: WsMessage,
{
    let flushed = timeout(close_timeout, async {
        if let Some((code, reason)) = close {
            frames.take_now(pending);
            while let Some(out) = pending.pop_front() {
                if let Some(message) = to_message(out) {
                    sink.feed(message).await?;
                }
            }
            sink.feed(M::close(code, &reason)).await?;
        }
        sink.close().await
    })
    .await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::debug!("socket closed without flushing (peer not reading or gone)");
    }
}

fn to_message<M: WsMessage>(item: Item) -> Option<M> {
    match item {
        Item::Frame(frame) => M::text(frame),
        Item::Binary(payload) => Some(M::binary(payload)),
        Item::Ping => Some(M::ping()),
    }
}
