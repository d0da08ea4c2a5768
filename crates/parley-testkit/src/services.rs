//! Backends that fault tests break on purpose: a private NATS or Redis server to kill and
//! start again, and a TCP proxy to cut in front of PostgreSQL.
//!
//! The machine's shared services (PostgreSQL on 5432, Redis on 6379, NATS on 4222) serve
//! every other test running at the same time, so a fault test never stops them. It starts
//! its own [`PrivateNats`] or [`PrivateRedis`] on a free port and kills that, or puts a
//! [`TcpProxy`] in front of the shared PostgreSQL and cuts the proxy.
//!
//! A server started again comes back on the same port, so clients built on its URL
//! reconnect by themselves, as they must after a real outage. Every helper panics with a
//! clear message (which binary is missing and how to install it) instead of skipping: a
//! fault test that silently does not run proves nothing.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a spawned server may take to accept TCP connections. Both start in well under
/// a second; the margin is for a loaded CI machine, and the bound turns a server that never
/// comes up into a failure that names it instead of a hung test.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Debian's `nats-server` package installs the binary (`/usr/sbin` is often not on
/// a non-root user's `PATH`, hence the full path).
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Debian's `redis-server` package puts it in `/usr/bin`, which is on every `PATH`.
pub const REDIS_SERVER: &str = "redis-server";

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read, released.
///
/// Another process may take it before the caller binds it, which is why the servers below
/// retry with a fresh port when their first start fails.
pub fn free_port() -> u16 {
    StdTcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// A `nats-server` of this test's own on 127.0.0.1, killed when dropped.
pub struct PrivateNats {
    server: Server,
}

impl PrivateNats {
    /// Starts a core NATS server (no JetStream) and waits until it accepts connections.
    pub async fn start() -> Self {
        let args = |port, _: &Path| words(&format!("-a 127.0.0.1 -p {port}"));
        Self {
            server: Server::start(NATS, args).await,
        }
    }

    /// Starts a server with JetStream, its store in this server's temp dir, so streams and
    /// consumers survive [`stop`](Self::stop) and [`start_again`](Self::start_again) as they
    /// would survive a crash of a real one.
    pub async fn start_with_jetstream() -> Self {
        let args = |port, dir: &Path| {
            let mut args = words(&format!("-a 127.0.0.1 -p {port} -js -sd"));
            args.push(dir.join("jetstream").display().to_string());
            args
        };
        Self {
            server: Server::start(NATS, args).await,
        }
    }

    /// `nats://127.0.0.1:<port>`; the same for the server's whole life, restarts included.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.server.port)
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Kills the server with SIGKILL (a crash: no goodbye to clients) and reaps it. Doing
    /// nothing when it is already stopped lets a test stop in several paths safely.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts the server again on the same port and with the same store, and waits until it
    /// accepts connections. Panics if it is running.
    pub async fn start_again(&mut self) {
        self.server.start_again().await;
    }

    /// The server's stdout and stderr, every run appended: where to look when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.server.log_path()
    }
}

/// A `redis-server` of this test's own on 127.0.0.1 that keeps nothing on disk, killed when
/// dropped.
pub struct PrivateRedis {
    server: Server,
}

impl PrivateRedis {
    /// Starts the server and waits until it accepts connections. Persistence is off: a
    /// restart comes back empty, as a Redis without persistence does after a crash (the
    /// state a presence or rate-limit backend must survive).
    pub async fn start() -> Self {
        let args = |port: u16, dir: &Path| {
            let mut args = words(&format!(
                "--port {port} --bind 127.0.0.1 --appendonly no --save"
            ));
            // `--save ""` turns snapshots off: the empty string is its own argument.
            let dir = dir.display().to_string();
            args.extend([String::new(), "--dir".to_owned(), dir]);
            args
        };
        Self {
            server: Server::start(REDIS, args).await,
        }
    }

    /// `redis://127.0.0.1:<port>`; the same for the server's whole life, restarts included.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.server.port)
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Kills the server with SIGKILL (a crash) and reaps it; nothing if already stopped.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts the server again, empty, on the same port, and waits until it accepts
    /// connections. Panics if it is running.
    pub async fn start_again(&mut self) {
        self.server.start_again().await;
    }

    /// The server's stdout and stderr, every run appended.
    pub fn log_path(&self) -> PathBuf {
        self.server.log_path()
    }
}

/// Command-line arguments from one line (none of them holds a space).
fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

/// What to run, and the Debian package to install when it is missing.
struct Binary(&'static str, &'static str);

const NATS: Binary = Binary(NATS_SERVER, "nats-server");
const REDIS: Binary = Binary(REDIS_SERVER, "redis-server");

/// One server binary run as a child on a fixed port. Its temp dir holds its log and its
/// data, so a restart finds both again; the dir goes when the server is dropped.
struct Server {
    binary: Binary,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Server {
    /// Spawns the binary on a free port and waits until it accepts connections. A first
    /// start that dies (most likely another process took the port since [`free_port`]) is
    /// tried again on a fresh port, twice.
    async fn start(binary: Binary, args: impl Fn(u16, &Path) -> Vec<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("parley-testkit-")
            .tempdir()
            .expect("create a temp dir for a private server");
        let mut server = Self {
            binary,
            args: Vec::new(),
            port: 0,
            child: None,
            dir,
        };
        let mut failures = Vec::new();
        for _ in 0..3 {
            server.port = free_port();
            server.args = args(server.port, server.dir.path());
            match server.run().await {
                Ok(()) => return server,
                Err(failure) => failures.push(format!("port {}: {failure}", server.port)),
            }
        }
        server.fail(&format!("did not start: {failures:?}"))
    }

    /// Spawns the binary with the server's arguments and waits until it is ready.
    async fn run(&mut self) -> Result<(), String> {
        let mut child = spawn(&self.binary, &self.args, &self.log_path());
        let ready = wait_ready(&mut child, self.port).await;
        if ready.is_ok() {
            self.child = Some(child);
        }
        ready
    }

    fn fail(&self, why: &str) -> ! {
        let log = log_tail(&self.log_path());
        panic!("{} {why}\n--- its log ---\n{log}", self.binary.0)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine; reaping is what matters, so the port is free at once.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn start_again(&mut self) {
        if self.child.is_some() {
            self.fail(&format!("on port {} is running: stop it first", self.port));
        }
        if let Err(failure) = self.run().await {
            self.fail(&format!(
                "did not start again on port {}: {failure}",
                self.port
            ));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns `binary` with its output appended to `log`. A missing binary panics with what to
/// install: these tests are meant to run everywhere the workspace's tests run.
fn spawn(binary: &Binary, args: &[String], log: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open a private server's log file");
    let stderr = log.try_clone().expect("clone a log file handle");
    match Command::new(binary.0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{}` not found: fault tests run a private copy of it (they never stop the \
             machine's shared one). Install the Debian package `{}` \
             (`sudo apt-get install {}`).",
            binary.0, binary.1, binary.1
        ),
        Err(error) => panic!("cannot run `{}`: {error}", binary.0),
    }
}

/// Polls a TCP connect until the child accepts or [`READY_TIMEOUT`] passes. A child that
/// exits first is reported at once (its log says why: a taken port, a bad flag); one that
/// never answers is killed, so a failed start leaves nothing running.
async fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status} before accepting connections"));
        }
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no connection accepted within {READY_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The end of a log, for a panic message: enough to show why a server stopped.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).map_or_else(
        |error| format!("(no log: {error})"),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A TCP proxy on 127.0.0.1 in front of one address (the shared PostgreSQL, say), which a
/// test cuts to make that service unreachable for the code under test only, and restores.
///
/// Each proxied connection is one task running [`copy_bidirectional`], tracked so that
/// [`cut`](Self::cut) can end them all. A cut resets both sockets of each connection (the
/// client's and the target's) rather than just dropping the task, so both ends see an
/// error at once instead of a half-open connection that hangs until a timeout. The proxy
/// stops and resets its connections when dropped; it needs a tokio runtime.
pub struct TcpProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    /// Bumped by every cut; each connection task watches it.
    cuts: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// True between [`TcpProxy::cut`] and [`TcpProxy::restore`]: new connections are
    /// accepted and reset at once.
    cut: bool,
    next_id: u64,
    live: HashMap<u64, JoinHandle<()>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned one is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TcpProxy {
    /// Listens on 127.0.0.1 at a free port and proxies every connection to `target`,
    /// opening the target connection when a client connects.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let listener = StdTcpListener::bind(("127.0.0.1", 0)).expect("bind a proxy port");
        listener
            .set_nonblocking(true)
            .expect("make the proxy listener non-blocking");
        let address = listener.local_addr().expect("the proxy's address");
        let listener = TcpListener::from_std(listener).expect("TcpProxy::start needs tokio");
        let shared = Arc::new(Shared {
            target,
            state: Mutex::default(),
            cuts: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept(listener, Arc::clone(&shared)));
        TcpProxy {
            address,
            shared,
            accept,
        }
    }

    /// Where clients connect instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Resets every proxied connection and every new one until [`restore`](Self::restore).
    /// When this returns, every connection open before it has been reset on both sides.
    pub async fn cut(&self) {
        let live = {
            let mut state = self.shared.state();
            state.cut = true;
            self.shared.cuts.send_modify(|cuts| *cuts += 1);
            std::mem::take(&mut state.live)
        };
        for (_, task) in live {
            let _ = task.await;
        }
    }

    /// Proxies new connections again (those cut stay closed; clients reconnect).
    pub fn restore(&self) {
        self.shared.state().cut = false;
    }

    /// Proxied connections open now, for assertions such as "the pool reconnected".
    pub fn connections(&self) -> usize {
        self.shared.state().live.len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.state().cut = true;
        self.shared.cuts.send_modify(|cuts| *cuts += 1);
    }
}

/// Accepts clients: while open, each gets a tracked proxy task; while cut, each is reset.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let mut state = shared.state();
        if state.cut {
            reset(client);
            continue;
        }
        let id = state.next_id;
        state.next_id += 1;
        // Subscribed before the task exists, so a cut right after this is not missed.
        let cuts = shared.cuts.subscribe();
        let task_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            proxy(client, task_shared.target, cuts).await;
            task_shared.state().live.remove(&id);
        });
        state.live.insert(id, task);
    }
}

/// Connects to the target and copies both ways until either side closes or a cut comes.
async fn proxy(mut client: TcpStream, target: SocketAddr, mut cuts: watch::Receiver<u64>) {
    let mut server = tokio::select! {
        server = TcpStream::connect(target) => match server {
            Ok(server) => server,
            // The target is down: the client sees a reset, as if it had tried it directly.
            Err(_) => return reset(client),
        },
        _ = cuts.changed() => return reset(client),
    };
    let ended_cleanly = tokio::select! {
        copied = copy_bidirectional(&mut client, &mut server) => copied.is_ok(),
        _ = cuts.changed() => false,
    };
    if !ended_cleanly {
        reset(client);
        reset(server);
    }
}

/// Closes a socket with a RST (`SO_LINGER` 0): the peer's next read or write fails at once.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}
