//! A terminal chat on roomcast-client: `cargo run -p roomcast-client --example chat -- ws://127.0.0.1:8080/ws lobby`
//! (with `roomcast serve` running). Lines typed are published to the room; what others say is
//! printed. Stop the server and start it again: the client reconnects, rejoins and says so.

use roomcast_client::{Client, Event};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), roomcast_client::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let room = args.next().unwrap_or_else(|| "lobby".into());
    let (client, mut events) = Client::builder(url).connect();
    client.join([room.as_str()]).await?;
    eprintln!("in {room}: type a line to send it");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => client.publish(&room, "chat", &line).await?,
                _ => break,
            },
            event = events.recv() => match event {
                Some(Event::Message(m)) if m.event == "chat" => {
                    eprintln!("> {}", m.data::<String>().unwrap_or_default());
                }
                Some(Event::Disconnected { code, will_reconnect, .. }) => {
                    eprintln!("(disconnected: {code}; reconnecting: {will_reconnect})");
                }
                Some(Event::Resync { room, .. }) => eprintln!("(back in {room})"),
                Some(_) => {}
                None => break,
            },
        }
    }
    client.close();
    Ok(())
}
