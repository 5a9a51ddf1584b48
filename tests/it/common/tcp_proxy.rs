//! A TCP proxy in front of a server (the test PostgreSQL) that the test can cut:
//! every open connection is closed and new ones are closed on arrival, as when the
//! database host goes away, until the test restores it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free port and relays each connection to `target`. Synchronous,
    /// so that a settings tweak can start it.
    fn in_front_of(target: SocketAddr) -> TcpProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(listener).unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let relays = Arc::new(Mutex::new(Vec::new()));
        let (open, open_relays) = (up.clone(), relays.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Down: the connection is dropped, closed, as it arrives.
                if !open.load(Ordering::SeqCst) {
                    continue;
                }
                let relay = tokio::spawn(relay(client, target));
                open_relays.lock().unwrap().push(relay);
            }
        });
        TcpProxy {
            port,
            up,
            relays,
            task,
        }
    }

    /// Puts a proxy between the app of `settings` (a settings text) and its
    /// PostgreSQL database; the settings text that goes through it.
    pub fn in_front_of_database(settings: &str) -> (String, TcpProxy) {
        let line = settings
            .lines()
            .find(|line| line.starts_with("url = \"postgres://"))
            .expect("a PostgreSQL database");
        let url =
            url::Url::parse(line.trim_start_matches("url = \"").trim_end_matches('"')).unwrap();
        let target = url.socket_addrs(|| Some(5432)).unwrap()[0];
        let proxy = TcpProxy::in_front_of(target);
        let mut through = url.clone();
        through.set_host(Some("127.0.0.1")).unwrap();
        through.set_port(Some(proxy.port)).unwrap();
        let settings = settings.replace(line, &format!("url = \"{through}\""));
        (settings, proxy)
    }

    /// Closes every connection, and every new one until `restore`.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
