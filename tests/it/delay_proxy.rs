//! The harness's delay proxy: bytes arrive in order and no earlier than the delay, and killing
//! the proxy cuts the connection like a partition.

use std::time::{Duration, Instant};

use hc_tests::delay_proxy::DelayProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free loopback port.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn echoes_in_order_after_the_round_trip() {
    let round_trip = Duration::from_millis(40);
    let proxy = DelayProxy::start(echo_server().await, round_trip)
        .await
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    let (mut read, mut write) = stream.split();
    let writing = async {
        for chunk in sent.chunks(7_000) {
            write.write_all(chunk).await.unwrap();
        }
    };
    let mut received = vec![0u8; sent.len()];
    let reading = read.read_exact(&mut received);
    let ((), read_result) = tokio::join!(writing, reading);
    read_result.unwrap();
    // A lower bound only: the proxy may be slower, never faster.
    assert!(started.elapsed() >= round_trip);
    assert!(received == sent, "bytes reordered or changed");
}

#[tokio::test]
async fn kill_cuts_open_connections() {
    let proxy = DelayProxy::start(echo_server().await, Duration::from_millis(10))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut answer = [0u8; 4];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"ping");
    proxy.kill();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the connection ends once the proxy is killed");
    assert!(read.is_err() || rest.is_empty());
}
