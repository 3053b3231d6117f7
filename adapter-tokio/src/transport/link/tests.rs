use super::*;
use crate::driver::round::Spare;
use crate::transport::codec::put_frame;
use std::ops::Range;
use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;

/// A link on a loopback socket, and the client's end.
pub(crate) async fn pair() -> (Link, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (Link::new(server, Arc::new(Budget::new(usize::MAX)), None), client)
}

/// The hub's round for a socket that gets `frames` of the batch.
pub(crate) fn round(frames: &[Range<usize>]) -> Round {
    let (mut round, mut spare) = (Round::default(), Spare::default());
    for frame in frames {
        round.push(frame.clone(), &mut spare);
    }
    round
}

pub(crate) async fn read_exactly(client: &mut TcpStream, len: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = vec![0; len];
    client.read_exact(&mut got).await.unwrap();
    got
}

#[tokio::test]
async fn a_round_goes_out_in_order_from_scattered_and_adjacent_frames_of_the_batch() {
    let (link, mut client) = pair().await;
    let limits = Limits { frames: 1024, bytes: 1 << 20 };
    let (mut batch, mut pool) = (Vec::new(), BufferPool::default());
    let text = OpCode::Data(Data::Text);
    let a = put_frame(&mut batch, text, b"first");
    let other = put_frame(&mut batch, text, b"for someone else");
    let b = put_frame(&mut batch, text, &[b'x'; 300]);
    let c = put_frame(&mut batch, text, b"third");
    let frames = round(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(frames.runs().len(), 2, "a alone, then b and c adjacent");
    assert!(link.flush(&batch, &frames, limits, &mut pool));
    let expected: Vec<u8> = [&batch[a], &batch[b], &batch[c]].concat();
    assert!(!expected.windows(other.len()).any(|w| w == &batch[other.clone()]));
    assert_eq!(read_exactly(&mut client, expected.len()).await, expected);
    let status = link.status();
    assert!(status.idle && !status.blocked, "all of it written, nothing kept");
}

#[tokio::test]
async fn frames_past_the_limits_are_dropped_and_reported_and_the_rest_goes_out() {
    // The socket's frames adjacent in the batch (one run, written straight from it), then
    // scattered among another socket's (gathered first).
    for scattered in [false, true] {
        let (link, mut client) = pair().await;
        let limits = Limits { frames: 2, bytes: 1 << 20 };
        let (mut batch, mut pool) = (Vec::new(), BufferPool::default());
        let text = OpCode::Data(Data::Text);
        let frames: Vec<_> = (0..3)
            .map(|i| {
                if scattered {
                    put_frame(&mut batch, text, b"someone else's");
                }
                put_frame(&mut batch, text, &[b'0' + i; 4])
            })
            .collect();
        let frames_of_round = round(&frames);
        assert_eq!(frames_of_round.runs().len(), if scattered { 3 } else { 1 });
        assert!(link.has_room(limits, (1, 6)), "a ping fits behind one frame");
        assert!(!link.has_room(limits, (2, 12)), "a ping would be a third frame");
        assert!(!link.flush(&batch, &frames_of_round, limits, &mut pool), "a slow consumer");
        let expected: Vec<u8> = [&batch[frames[0].clone()], &batch[frames[1].clone()]].concat();
        assert_eq!(read_exactly(&mut client, expected.len()).await, expected);
        assert!(link.push_close(4005, "slow"));
        assert!(link.flush(&batch, &Round::default(), limits, &mut pool));
        let close = read_exactly(&mut client, 8).await;
        assert_eq!(close[..4], [0x88, 6, 0x0f, 0xa5], "the close follows, 4005");
    }
}

#[tokio::test]
async fn what_a_full_socket_cannot_take_is_kept_whole_and_written_when_it_drains() {
    let (link, mut client) = pair().await;
    let limits = Limits { frames: 100_000, bytes: 1 << 30 };
    let (mut batch, mut pool) = (Vec::new(), BufferPool::default());
    let text = OpCode::Data(Data::Text);
    // Far more than the kernel's buffers hold, with the client not reading yet.
    let frames: Vec<_> = (0..64)
        .map(|i| put_frame(&mut batch, text, &vec![b'a' + (i % 26) as u8; 64 * 1024]))
        .collect();
    assert_eq!(round(&frames).runs().len(), 1, "adjacent: written straight from the batch");
    assert!(link.flush(&batch, &round(&frames), limits, &mut pool));
    assert!(link.status().blocked, "the socket filled up");
    let expected: Vec<u8> = frames.iter().flat_map(|f| batch[f.clone()].to_vec()).collect();
    batch.clear(); // the hub reuses its batch: what is kept must be the socket's own copy
    let reader =
        tokio::spawn(async move { read_exactly(&mut client, expected.len()).await == expected });
    while link.status().blocked {
        link.stream.writable().await.unwrap();
        link.write_drained();
    }
    assert!(reader.await.unwrap(), "every byte, in order");
}
