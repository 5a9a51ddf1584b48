//! CAS tickets (CAS 3.0.3 §3): the ones Guichet issues, and the ones a client
//! presents. Every ticket is `PREFIX-` followed by random hex: the spec allows only
//! `[A-Za-z0-9-]` (§3.7), mod_auth_cas only recognises `^(S|P)T-[A-Za-z0-9.-]*$`,
//! phpCAS wants `^PGTIOU-[.\-\w]+$` and `^[PT]GT-[.\-\w]+$`. Only a ticket's
//! SHA-256 (`TokenHash`) is meant to be stored; `Debug` never shows the value.

use std::fmt;
use std::marker::PhantomData;

use rand::RngCore;
use rand::rngs::OsRng;

use super::CasError;
use crate::domain::TokenHash;

/// 160 bits from the operating system: a ticket cannot be guessed, even with
/// every ticket ever issued known.
const RANDOM_BYTES: usize = 20;

/// The longest random part a client may present (§3.1.2 and §3.4.1 recommend
/// accepting tickets of up to 256 characters).
const MAX_PRESENTED_CHARS: usize = 256;

mod sealed {
    pub trait Sealed {}
}

/// What a ticket is for; it fixes the prefix. Sealed: the five kinds below are all.
pub trait Kind: sealed::Sealed {
    const PREFIX: &'static str;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident => $prefix:literal),* $(,)?) => {$(
        $(#[$doc])*
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Kind for $name {
            const PREFIX: &'static str = $prefix;
        }
    )*};
}

kinds! {
    /// A service ticket: one validation, for the service it was issued to (§3.1).
    St => "ST-",
    /// A proxy ticket: like a service ticket, obtained through `/proxy` (§3.2).
    Pt => "PT-",
    /// A proxy-granting ticket: used many times at `/proxy`, dies with the session (§3.3).
    Pgt => "PGT-",
    /// The IOU that stands for a PGT in the validation answer (§3.4); it is not
    /// derived from the PGT: both are random.
    Iou => "PGTIOU-",
    /// The `ID` of a single-logout message (Apereo's `LR-` ids).
    Lr => "LR-",
}

/// A ticket Guichet issues: the prefix of its kind and 160 random bits in hex.
pub struct Ticket<K: Kind> {
    value: String,
    kind: PhantomData<K>,
}

pub type ServiceTicket = Ticket<St>;
pub type ProxyTicket = Ticket<Pt>;
pub type ProxyGrantingTicket = Ticket<Pgt>;
pub type PgtIou = Ticket<Iou>;
pub type LogoutRequestId = Ticket<Lr>;

impl<K: Kind> Ticket<K> {
    /// A fresh ticket from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Ticket {
            value: format!("{}{}", K::PREFIX, hex::encode(bytes)),
            kind: PhantomData,
        }
    }

    /// What the store keeps: the same hash as `PresentedTicket::hash` of the
    /// same value, so a presented ticket finds the issued one.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of_secret(&self.value)
    }

    /// The raw value, for the answer or the redirect that carries it only.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl<K: Kind> Clone for Ticket<K> {
    fn clone(&self) -> Self {
        Ticket {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Kind> PartialEq for Ticket<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K: Kind> Eq for Ticket<K> {}

impl<K: Kind> fmt::Debug for Ticket<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticket({}<redacted>)", K::PREFIX)
    }
}

/// The kinds of ticket a client may present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketKind {
    Service,
    Proxy,
    ProxyGranting,
}

impl TicketKind {
    /// Kinds that one validation attempt spends, whatever its outcome (§3.1.1,
    /// §3.2.1). A PGT is used many times and is never spent by a validation.
    pub fn is_one_time(self) -> bool {
        matches!(self, TicketKind::Service | TicketKind::Proxy)
    }

    fn prefix(self) -> &'static str {
        match self {
            TicketKind::Service => St::PREFIX,
            TicketKind::Proxy => Pt::PREFIX,
            TicketKind::ProxyGranting => Pgt::PREFIX,
        }
    }
}

/// A ticket as a client sent it (`ticket`, `pgt`): `^(ST|PT|PGT)-[A-Za-z0-9-]{1,256}$`,
/// its kind known from its prefix. Whether it was ever issued is the store's to say.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedTicket {
    kind: TicketKind,
    value: String,
}

impl PresentedTicket {
    /// Refuses anything not shaped like a ticket with INVALID_TICKET, as an
    /// unknown ticket is refused: the client learns nothing more.
    pub fn parse(raw: &str) -> Result<PresentedTicket, CasError> {
        let kinds = [
            TicketKind::Service,
            TicketKind::Proxy,
            TicketKind::ProxyGranting,
        ];
        kinds
            .into_iter()
            .find_map(|kind| {
                let rest = raw.strip_prefix(kind.prefix())?;
                let shaped = (1..=MAX_PRESENTED_CHARS).contains(&rest.len())
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                shaped.then(|| PresentedTicket {
                    kind,
                    value: raw.to_owned(),
                })
            })
            .ok_or(CasError::ticket_not_recognized())
    }

    pub fn kind(&self) -> TicketKind {
        self.kind
    }

    /// The key to look the ticket up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of_secret(&self.value)
    }

    /// The raw value: for the `SessionIndex` of a single-logout message, which
    /// must be exactly the service ticket the service validated. A service
    /// ticket is worthless once validated, so keeping that value for logout
    /// gives nothing away.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for PresentedTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedTicket({}<redacted>)", self.kind.prefix())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn only_ticket_characters(value: &str) -> bool {
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }

    #[test]
    fn issued_tickets_carry_their_prefix_and_160_random_bits() {
        let st = ServiceTicket::generate();
        assert!(st.expose().starts_with("ST-"));
        assert_eq!(st.expose().len(), 3 + 2 * RANDOM_BYTES);
        assert!(ProxyTicket::generate().expose().starts_with("PT-"));
        assert!(ProxyGrantingTicket::generate().expose().starts_with("PGT-"));
        assert!(PgtIou::generate().expose().starts_with("PGTIOU-"));
        assert!(LogoutRequestId::generate().expose().starts_with("LR-"));
        assert_ne!(ServiceTicket::generate(), ServiceTicket::generate());
    }

    #[test]
    fn issued_tickets_use_only_the_characters_of_section_3_7() {
        for value in [
            ServiceTicket::generate().expose().to_owned(),
            PgtIou::generate().expose().to_owned(),
            ProxyGrantingTicket::generate().expose().to_owned(),
        ] {
            assert!(only_ticket_characters(&value), "{value}");
            assert!(value.len() < 256);
        }
    }

    #[test]
    fn a_presented_ticket_finds_the_issued_one_by_hash() {
        let st = ServiceTicket::generate();
        let presented = PresentedTicket::parse(st.expose()).unwrap();
        assert_eq!(presented.kind(), TicketKind::Service);
        assert_eq!(presented.hash(), st.hash());
        assert_eq!(presented.hash().as_str().len(), 64);
        assert_ne!(presented.hash(), ServiceTicket::generate().hash());
        assert_eq!(presented.expose(), st.expose());
    }

    #[test]
    fn the_prefix_tells_the_kind() {
        let kind = |raw: &str| PresentedTicket::parse(raw).map(|t| t.kind());
        assert_eq!(kind("ST-1-abc"), Ok(TicketKind::Service));
        assert_eq!(
            kind("PT-1856392-b98xZrQN4p90ASrw96c8"),
            Ok(TicketKind::Proxy)
        );
        assert_eq!(
            kind("PGT-490649-W81Y9Sa2vTM7hda7xNTkezTbVge4CUsybAr"),
            Ok(TicketKind::ProxyGranting)
        );
        assert!(TicketKind::Service.is_one_time());
        assert!(TicketKind::Proxy.is_one_time());
        assert!(!TicketKind::ProxyGranting.is_one_time());
    }

    #[test]
    fn anything_not_shaped_like_a_ticket_is_not_recognized() {
        let too_long = format!("ST-{}", "a".repeat(257));
        let longest = format!("ST-{}", "a".repeat(256));
        assert!(PresentedTicket::parse(&longest).is_ok());
        for bad in [
            "",
            "ST-",
            "ST",
            "st-abc",
            "TGT-abc",
            "LT-abc",
            "PGTIOU-abc",
            "ST-abc_def",
            "ST-1-u4hrm3td92cLxpCvrjylcas.example.com",
            "ST-abc ",
            " ST-abc",
            "ST-abc\n",
            "ST-é",
            too_long.as_str(),
        ] {
            assert_eq!(
                PresentedTicket::parse(bad),
                Err(CasError::ticket_not_recognized()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_a_ticket() {
        let st = ServiceTicket::generate();
        let presented = PresentedTicket::parse(st.expose()).unwrap();
        for debug in [format!("{st:?}"), format!("{presented:?}")] {
            assert!(!debug.contains(&st.expose()[3..]), "{debug}");
            assert!(debug.contains("ST-<redacted>"), "{debug}");
        }
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics_and_keeps_only_ticket_shapes(raw in ".{0,300}") {
            if let Ok(ticket) = PresentedTicket::parse(&raw) {
                prop_assert_eq!(ticket.expose(), raw.as_str());
                prop_assert!(only_ticket_characters(&raw));
            }
        }

        #[test]
        fn every_well_shaped_ticket_is_accepted(raw in "(ST|PT|PGT)-[A-Za-z0-9-]{1,256}") {
            prop_assert!(PresentedTicket::parse(&raw).is_ok());
        }
    }
}
