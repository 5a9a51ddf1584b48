//! A TCP proxy in front of the test slapd that can hold back the directory's answer
//! to a write: the write is applied, but Guichet hears of it late. With the
//! request's timeout shorter than the delay, the request is dropped while the
//! write is in flight, which is how a client hanging up or a timeout cuts a
//! request off half-way. It can also cut the connection of a write before the
//! directory has it, or after it applied it (the answer lost), as the directory
//! dying at that moment would. It can hold back answers to binds too (a slow
//! directory at sign-in). It also records the DN of every bind Guichet makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// LDAP answers to writes (RFC 4511 §4.6 ModifyResponse, §4.12 ExtendedResponse).
const WRITE_ANSWERS: [u8; 2] = [0x67, 0x78];
/// LDAP writes (RFC 4511 §4.6 ModifyRequest, §4.12 ExtendedRequest).
const WRITE_REQUESTS: [u8; 2] = [0x66, 0x77];
/// RFC 4511 §4.2 BindRequest, §4.2.2 BindResponse.
const BIND_REQUEST: u8 = 0x60;
const BIND_ANSWER: u8 = 0x61;

/// How late answers reach Guichet, by kind (`None`: at once).
#[derive(Debug, Clone, Copy, Default)]
struct Hold {
    writes: Option<Duration>,
    binds: Option<Duration>,
}

impl Hold {
    fn of(&self, message: &[u8]) -> Option<Duration> {
        match op_tag(message) {
            Some(tag) if WRITE_ANSWERS.contains(&tag) => self.writes,
            Some(BIND_ANSWER) => self.binds,
            _ => None,
        }
    }
}

/// Where the next write's connection is cut, as the directory dying would cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The write never reaches the directory.
    BeforeTheWrite,
    /// The directory applies the write; its answer is lost with the connection.
    AfterTheWrite,
}

pub struct LdapProxy {
    pub port: u16,
    hold: Arc<Mutex<Hold>>,
    cut: Arc<Mutex<Option<Cut>>>,
    binds: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LdapProxy {
    /// Listens on a free TCP port in front of the slapd at `ldapi_url` (the test
    /// directory's Unix socket). Synchronous, so that a settings tweak can start it.
    fn in_front_of(ldapi_url: &str) -> LdapProxy {
        let encoded = ldapi_url.trim_start_matches("ldapi://");
        let socket: String = url::form_urlencoded::parse(format!("p={encoded}").as_bytes())
            .next()
            .map(|(_, path)| path.into_owned())
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(listener).unwrap();
        let hold = Arc::new(Mutex::new(Hold::default()));
        let cut = Arc::new(Mutex::new(None));
        let binds = Arc::new(Mutex::new(Vec::new()));
        let faults = Faults {
            hold: hold.clone(),
            cut: cut.clone(),
            binds: binds.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (socket, faults) = (socket.clone(), faults.clone());
                tokio::spawn(async move {
                    if let Ok(server) = UnixStream::connect(&socket).await {
                        relay(client, server, faults).await;
                    }
                });
            }
        });
        LdapProxy {
            port,
            hold,
            cut,
            binds,
            task,
        }
    }

    /// Puts a proxy between the app of `settings` (a settings text) and its
    /// directory; the settings text that goes through it.
    pub fn in_front_of_settings(settings: &str) -> (String, LdapProxy) {
        let ldapi = settings
            .lines()
            .find_map(|line| line.strip_prefix("url = \"ldapi://"))
            .map(|rest| format!("ldapi://{}", rest.trim_end_matches('"')))
            .unwrap();
        let proxy = LdapProxy::in_front_of(&ldapi);
        (settings.replace(&ldapi, &proxy.url()), proxy)
    }

    /// From now on, answers to writes reach Guichet `delay` late (`None`: at once).
    pub fn hold_write_answers(&self, delay: Option<Duration>) {
        self.hold.lock().unwrap().writes = delay;
    }

    /// From now on, answers to binds reach Guichet `delay` late (`None`: at once).
    pub fn hold_bind_answers(&self, delay: Option<Duration>) {
        self.hold.lock().unwrap().binds = delay;
    }

    /// Cuts the connection of the next write at `cut` (once: later writes pass).
    pub fn cut_next_write(&self, cut: Cut) {
        *self.cut.lock().unwrap() = Some(cut);
    }

    /// The DNs bound to so far, in order.
    pub fn binds(&self) -> Vec<String> {
        self.binds.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

impl Drop for LdapProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the tests set on the proxy, shared with every connection it relays.
#[derive(Clone)]
struct Faults {
    hold: Arc<Mutex<Hold>>,
    cut: Arc<Mutex<Option<Cut>>>,
    binds: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// Takes the cut set for the next write if it is `at`.
    fn take_cut(&self, at: Cut) -> bool {
        let mut cut = self.cut.lock().unwrap();
        let hit = *cut == Some(at);
        if hit {
            *cut = None;
        }
        hit
    }
}

async fn relay(client: TcpStream, server: UnixStream, faults: Faults) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let seen = faults.clone();
    let upstream = tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read) = client_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            pending.extend_from_slice(&buffer[..read]);
            while let Some(size) = message_size(&pending) {
                let message: Vec<u8> = pending.drain(..size).collect();
                if let Some(dn) = bind_dn(&message) {
                    seen.binds.lock().unwrap().push(dn);
                }
                // Ending here closes the connection to the directory, and so the
                // relay back to Guichet, without passing the write on.
                if is_write_request(&message) && seen.take_cut(Cut::BeforeTheWrite) {
                    return;
                }
                if server_write.write_all(&message).await.is_err() {
                    return;
                }
            }
        }
        let _ = server_write.shutdown().await;
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = server_read.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        pending.extend_from_slice(&buffer[..read]);
        while let Some(size) = message_size(&pending) {
            let message: Vec<u8> = pending.drain(..size).collect();
            // Dropping both halves closes the connection with the answer unsent.
            if is_write_answer(&message) && faults.take_cut(Cut::AfterTheWrite) {
                upstream.abort();
                return;
            }
            let held = faults.hold.lock().unwrap().of(&message);
            if let Some(held) = held {
                tokio::time::sleep(held).await;
            }
            if client_write.write_all(&message).await.is_err() {
                upstream.abort();
                return;
            }
        }
    }
    upstream.abort();
}

/// The length of the first whole BER message in `bytes`, if it has arrived.
fn message_size(bytes: &[u8]) -> Option<usize> {
    let (length, header) = ber_length(bytes.get(1..)?)?;
    let size = 1 + header + length;
    (bytes.len() >= size).then_some(size)
}

/// A BER length: its value and how many bytes it took.
fn ber_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    let digits = bytes.get(1..=count)?;
    let value = digits
        .iter()
        .fold(0usize, |value, b| (value << 8) | usize::from(*b));
    Some((value, 1 + count))
}

/// Where the protocolOp starts: LDAPMessage ::= SEQUENCE { messageID INTEGER,
/// protocolOp CHOICE … }
fn op_offset(message: &[u8]) -> Option<usize> {
    let (_, header) = message.get(1..).and_then(ber_length)?;
    let id = 1 + header;
    let (id_length, id_header) = message.get(id + 1..).and_then(ber_length)?;
    Some(id + 1 + id_header + id_length)
}

fn is_write_answer(message: &[u8]) -> bool {
    op_tag(message).is_some_and(|tag| WRITE_ANSWERS.contains(&tag))
}

fn is_write_request(message: &[u8]) -> bool {
    op_tag(message).is_some_and(|tag| WRITE_REQUESTS.contains(&tag))
}

fn op_tag(message: &[u8]) -> Option<u8> {
    op_offset(message).and_then(|op| message.get(op)).copied()
}

/// BindRequest ::= [APPLICATION 0] SEQUENCE { version INTEGER, name LDAPDN, … }
fn bind_dn(message: &[u8]) -> Option<String> {
    let op = op_offset(message)?;
    if *message.get(op)? != BIND_REQUEST {
        return None;
    }
    let (_, op_header) = message.get(op + 1..).and_then(ber_length)?;
    let version = op + 1 + op_header;
    let (version_length, version_header) = message.get(version + 1..).and_then(ber_length)?;
    let name = version + 1 + version_header + version_length;
    let (name_length, name_header) = message.get(name + 1..).and_then(ber_length)?;
    let start = name + 1 + name_header;
    let bytes = message.get(start..start + name_length)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ldap_message_boundaries_and_answers() {
        // messageID 2, ModifyResponse { resultCode success, "", "" }
        let modify = [
            0x30, 0x0c, 0x02, 0x01, 0x02, 0x67, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert_eq!(message_size(&modify), Some(14));
        assert!(is_write_answer(&modify));
        assert_eq!(message_size(&modify[..5]), None);
        let bind = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert!(!is_write_answer(&bind));
        let second = Duration::from_secs(1);
        let writes = Hold {
            writes: Some(second),
            binds: None,
        };
        assert_eq!((writes.of(&modify), writes.of(&bind)), (Some(second), None));
        let binds = Hold {
            writes: None,
            binds: Some(second),
        };
        assert_eq!((binds.of(&bind), binds.of(&modify)), (Some(second), None));
        // messageID 1, BindRequest { version 3, name "cn=x", simple "pw" }
        let request = [
            0x30, 0x12, 0x02, 0x01, 0x01, 0x60, 0x0d, 0x02, 0x01, 0x03, 0x04, 0x04, b'c', b'n',
            b'=', b'x', 0x80, 0x02, b'p', b'w',
        ];
        assert_eq!(message_size(&request), Some(20));
        assert_eq!(bind_dn(&request).as_deref(), Some("cn=x"));
        assert_eq!(bind_dn(&modify), None);
        // A long-form length: 0x81 then one byte; five bytes announced, three here.
        let long = [0x30, 0x81, 0x05, 0x02, 0x01, 0x05];
        assert_eq!(message_size(&long), None);
        let whole = [0x30, 0x81, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(message_size(&whole), Some(6));
    }
}
