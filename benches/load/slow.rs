//! Slow clients: connections that send half a request head and then one byte every
//! few seconds, never finishing it (a slowloris). What counts is whether the server
//! closes them, and whether a normal request is still answered meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::run::address;

/// What became of the slow connections.
#[derive(Debug, Default)]
pub struct SlowReport {
    pub opened: usize,
    pub refused: usize,
    /// Seconds after opening at which the server closed each one it closed.
    pub closed_after: Vec<f64>,
}

enum Fate {
    Refused,
    Closed(f64),
    Open,
}

/// Opens `count` slow connections from block `block`, each from its own address,
/// and keeps them until `stop`.
pub async fn slow_clients(
    server: std::net::SocketAddr,
    block: u8,
    count: usize,
    stop: Arc<AtomicBool>,
) -> SlowReport {
    let tasks: Vec<_> = (0..count)
        .map(|i| tokio::spawn(one_slow_client(server, block, i, stop.clone())))
        .collect();
    let mut report = SlowReport::default();
    for task in tasks {
        match task.await.unwrap_or(Fate::Refused) {
            Fate::Refused => report.refused += 1,
            Fate::Closed(after) => {
                report.opened += 1;
                report.closed_after.push(after);
            }
            Fate::Open => report.opened += 1,
        }
    }
    report.closed_after.sort_by(f64::total_cmp);
    report
}

async fn one_slow_client(
    server: std::net::SocketAddr,
    block: u8,
    i: usize,
    stop: Arc<AtomicBool>,
) -> Fate {
    let Ok(socket) = TcpSocket::new_v4() else {
        return Fate::Refused;
    };
    if socket.bind((address(block, i), 0).into()).is_err() {
        return Fate::Refused;
    }
    let Ok(mut stream) = socket.connect(server).await else {
        return Fate::Refused;
    };
    let opened = Instant::now();
    let half = "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-";
    if stream.write_all(half.as_bytes()).await.is_err() {
        return Fate::Closed(0.0);
    }
    let mut buffer = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                // Whatever the server answered (a 408, say) it then closes; count the close.
                Ok(n) if n > 0 => continue,
                _ => return Fate::Closed(opened.elapsed().as_secs_f64()),
            },
            () = tokio::time::sleep(Duration::from_secs(5)) => {
                if stream.write_all(b"f").await.is_err() {
                    return Fate::Closed(opened.elapsed().as_secs_f64());
                }
            }
        }
    }
    Fate::Open
}
