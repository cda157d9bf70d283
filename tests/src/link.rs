//! One network link that can be cut: the traffic from one emulated region's functions to
//! another region's endpoint, through a TCP relay on 127.0.0.1. Cut, the relay forwards
//! nothing either way and answers nothing, on new and open connections alike: the far
//! region is then down for the functions sent through this link only (a partition), while
//! users and every other vantage point still reach it. A cut link looks like a frozen
//! region to its callers (a connect that succeeds, then silence until their timeouts), as
//! a partition in AWS does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Link {
    /// `http://127.0.0.1:<port>`: the far region's endpoint, through this link.
    url: String,
    cut: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl Link {
    /// A link to `target` (`http://127.0.0.1:<port>`, a region's endpoint), up.
    pub async fn start(target: &str) -> Link {
        let address = target
            .strip_prefix("http://")
            .unwrap_or(target)
            .trim_end_matches('/')
            .to_owned();
        assert!(
            address.starts_with("127.0.0.1:"),
            "a link relays to 127.0.0.1 only, not {target}"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind link");
        let url = format!("http://{}", listener.local_addr().expect("link address"));
        let cut = Arc::new(AtomicBool::new(false));
        let accept = tokio::spawn({
            let cut = cut.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, address.clone(), cut.clone()));
                }
            }
        });
        Link { url, cut, accept }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Nothing crosses the link until [`Link::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `REGION_ENDPOINTS` (`region=url,...`) with `region` reached at `url` instead (through
/// a link).
pub fn endpoints_through(endpoints: &str, region: &str, url: &str) -> String {
    endpoints
        .split(',')
        .map(|entry| match entry.split_once('=') {
            Some((r, _)) if r == region => format!("{r}={url}"),
            _ => entry.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One connection: bytes each way while the link is up. Once it is cut, whatever
/// arrives is read and dropped, never delivered or answered, and the connection ends
/// when the caller gives up and closes it.
async fn relay(client: TcpStream, target: String, cut: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, cut.clone());
    let down = pump(server_read, client_write, cut);
    // Either side closing ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Cut: this connection carries nothing more, however long the caller waits; it
        // is read on only to see the caller close it.
        if cut.load(Ordering::SeqCst) {
            while let Ok(n) = from.read(&mut buffer).await {
                if n == 0 {
                    return;
                }
            }
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_cut_link_carries_nothing_and_a_restored_one_carries_new_connections() {
        // An echo server as the far region.
        let far = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let far_url = format!("http://{}", far.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = far.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let link = Link::start(&far_url).await;
        let address = link.url().trim_start_matches("http://").to_owned();
        let echo = |address: String| async move {
            let mut s = TcpStream::connect(&address).await.unwrap();
            s.write_all(b"ping").await.unwrap();
            let mut b = [0u8; 4];
            tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut b))
                .await
                .is_ok_and(|r| r.is_ok() && &b == b"ping")
        };
        assert!(echo(address.clone()).await, "an up link carries the bytes");
        link.cut();
        assert!(!echo(address.clone()).await, "a cut link answers nothing");
        link.restore();
        assert!(echo(address).await, "restored, it carries them again");
    }
}
