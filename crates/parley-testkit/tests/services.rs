//! The fault-test tools themselves: private servers stop and come back on their port, and
//! a cut proxy makes its clients fail at once, then works again. A missing binary fails
//! these tests with what to install; they never skip.

use std::net::SocketAddr;
use std::time::Duration;

use parley_testkit::services::{free_port, PrivateNats, PrivateRedis, TcpProxy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

const SHARED_PORTS: [u16; 3] = [5432, 6379, 4222];

/// Answers `PING` (through the `redis` client) with the port the server says it is on, so a
/// test that reached the shared Redis by mistake would fail.
async fn redis_port(url: &str) -> redis::RedisResult<u16> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
    assert_eq!(pong, "PONG");
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query_async(&mut connection)
        .await?;
    Ok(config[1].parse().expect("a port number"))
}

async fn refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_redis_answers_stops_and_answers_again_on_its_port() {
    let mut redis = PrivateRedis::start().await;
    let port = redis.port();
    assert!(!SHARED_PORTS.contains(&port));
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(redis_port(&redis.url()).await.unwrap(), port);

    let client = redis::Client::open(redis.url()).unwrap();
    let mut manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    redis.stop();
    assert!(refused(port).await, "a stopped redis accepts connections");
    assert!(redis_port(&redis.url()).await.is_err());
    redis.stop(); // twice is fine

    redis.start_again().await;
    assert_eq!(redis.port(), port);
    assert_eq!(redis_port(&redis.url()).await.unwrap(), port);
    // A client made before the crash finds the server again by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<String>(&mut manager);
        if let Ok(Ok(pong)) = timeout(Duration::from_secs(1), ping).await {
            assert_eq!(pong, "PONG");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the connection manager never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(redis.log_path().exists());
}

/// Connects and returns the server's `INFO` line.
async fn nats_info(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut line = String::new();
    timeout(
        Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut line),
    )
    .await
    .expect("nats sends INFO at once")
    .unwrap();
    assert!(line.starts_with("INFO {"), "not a NATS greeting: {line:?}");
    assert!(line.contains(&format!("\"port\":{port}")), "{line}");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_nats_greets_stops_and_greets_again_on_its_port() {
    let mut nats = PrivateNats::start().await;
    let port = nats.port();
    assert!(!SHARED_PORTS.contains(&port));
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    assert!(!nats_info(port).await.contains("\"jetstream\":true"));

    nats.stop();
    assert!(refused(port).await, "a stopped nats accepts connections");
    nats.start_again().await;
    assert_eq!(nats.port(), port);
    nats_info(port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_nats_with_jetstream_keeps_its_store_across_restarts() {
    let mut nats = PrivateNats::start_with_jetstream().await;
    assert!(nats_info(nats.port()).await.contains("\"jetstream\":true"));
    nats.stop();
    nats.start_again().await;
    assert!(nats_info(nats.port()).await.contains("\"jetstream\":true"));
    let log = std::fs::read_to_string(nats.log_path()).unwrap();
    assert_eq!(log.matches("Starting JetStream").count(), 2, "{log}");
}

/// An echo server on a free port, for the proxy to stand in front of.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    address
}

async fn echoes(stream: &mut TcpStream, text: &[u8]) {
    stream.write_all(text).await.unwrap();
    let mut back = vec![0; text.len()];
    timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .expect("an echo within 5 s")
        .unwrap();
    assert_eq!(back, text);
}

/// True when the stream ends (EOF or error) within a second instead of hanging.
async fn ends_within_a_second(stream: &mut TcpStream) -> bool {
    let mut buffer = [0; 16];
    match timeout(Duration::from_secs(1), stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_proxy_fails_its_clients_at_once_until_restored() {
    let proxy = TcpProxy::start(echo_server().await);
    let mut first = TcpStream::connect(proxy.address()).await.unwrap();
    let mut second = TcpStream::connect(proxy.address()).await.unwrap();
    echoes(&mut first, b"hello").await;
    echoes(&mut second, b"again").await;
    assert_eq!(proxy.connections(), 2);

    proxy.cut().await;
    assert_eq!(proxy.connections(), 0);
    assert!(
        ends_within_a_second(&mut first).await,
        "a cut connection hangs"
    );
    assert!(
        ends_within_a_second(&mut second).await,
        "a cut connection hangs"
    );
    // A new connection is accepted, then reset at once: it never reaches the target.
    if let Ok(mut late) = TcpStream::connect(proxy.address()).await {
        let _ = late.write_all(b"anyone?").await;
        assert!(
            ends_within_a_second(&mut late).await,
            "a cut proxy let one in"
        );
    }
    assert_eq!(proxy.connections(), 0);

    proxy.restore();
    let mut third = TcpStream::connect(proxy.address()).await.unwrap();
    echoes(&mut third, b"back").await;
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_to_a_dead_target_resets_its_clients() {
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], free_port())));
    // The reset may even beat the end of the client's connect.
    if let Ok(mut client) = TcpStream::connect(proxy.address()).await {
        assert!(ends_within_a_second(&mut client).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_proxy_closes_its_connections() {
    let proxy = TcpProxy::start(echo_server().await);
    let address = proxy.address();
    let mut client = TcpStream::connect(address).await.unwrap();
    echoes(&mut client, b"hi").await;
    drop(proxy);
    assert!(ends_within_a_second(&mut client).await);
    // The listener goes with the accept task, as soon as the runtime drops it.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !refused(address.port()).await {
        assert!(Instant::now() < deadline, "a dropped proxy still listens");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
