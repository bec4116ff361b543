//! The request/reply bookkeeping of a netlink conversation, as a pure state machine.
//!
//! Each request gets a sequence number and is *pending* until the kernel closes it:
//! a do-request with `NLM_F_ACK` by an `NLMSG_ERROR` (code 0 is the ACK), a dump by
//! `NLMSG_DONE` (or an `NLMSG_ERROR` if the dump could not start). Data messages in
//! between are collected as raw frames for the caller to decode. Frames for sequence
//! numbers nobody waits for (replies to a request that timed out) are counted and dropped.
//! The socket loop around this lives in [`super::client`].

use std::collections::BTreeMap;
use std::fmt::Debug;

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, NetlinkDeserializable, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_generic::{GenlFamily, GenlMessage};

const HEADER_LEN: usize = 16;

/// How the kernel will close a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A do-request sent with `NLM_F_ACK`: zero or more replies, then an ACK or an error.
    Ack,
    /// A dump (`NLM_F_DUMP`): multipart replies, then `NLMSG_DONE`.
    Dump,
}

impl Expect {
    /// The header flags that make the kernel answer as expected.
    pub fn flags(self) -> u16 {
        match self {
            Expect::Ack => NLM_F_REQUEST | NLM_F_ACK,
            Expect::Dump => NLM_F_REQUEST | NLM_F_DUMP,
        }
    }
}

/// How one request ended: its data frames, or the kernel's errno (positive).
pub type Outcome = Result<Vec<Vec<u8>>, i32>;

#[derive(Debug)]
struct Pending {
    replies: Vec<Vec<u8>>,
}

/// Sequence numbers in flight and what has arrived for them.
#[derive(Debug)]
pub struct Exchange {
    next_seq: u32,
    pending: BTreeMap<u32, Pending>,
    stale: u64,
}

impl Exchange {
    /// `first_seq` lets a client start somewhere unpredictable, so that frames from an
    /// earlier socket user cannot be mistaken for ours.
    pub fn new(first_seq: u32) -> Exchange {
        Exchange {
            next_seq: first_seq.max(1),
            pending: BTreeMap::new(),
            stale: 0,
        }
    }

    /// Registers a new request and returns its sequence number.
    pub fn register(&mut self) -> u32 {
        let seq = self.next_seq;
        // 0 is skipped: it is what unsolicited kernel messages carry.
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.pending.insert(
            seq,
            Pending {
                replies: Vec::new(),
            },
        );
        seq
    }

    pub fn is_pending(&self, seq: u32) -> bool {
        self.pending.contains_key(&seq)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Forgets every pending request (after a deadline passed); whatever still arrives for
    /// them is counted as stale.
    pub fn abandon_all(&mut self) {
        self.pending.clear();
    }

    /// Frames received for requests nobody waits for any more.
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// Takes in one received datagram and returns the requests it completed.
    pub fn feed(&mut self, datagram: &[u8]) -> Result<Vec<(u32, Outcome)>, DecodeError> {
        let mut done = Vec::new();
        for frame in frames(datagram) {
            let frame = frame?;
            let buf = NetlinkBuffer::new_checked(frame)?;
            let seq = buf.sequence_number();
            let kind = buf.message_type();
            if !self.pending.contains_key(&seq) {
                self.stale += 1;
                continue;
            }
            let finished = match kind {
                NLMSG_NOOP => None,
                NLMSG_OVERRUN => return Err(DecodeError::from("NLMSG_OVERRUN: messages lost")),
                NLMSG_ERROR | NLMSG_DONE => Some(closing_code(buf.payload(), kind)?),
                _ => {
                    if let Some(p) = self.pending.get_mut(&seq) {
                        p.replies.push(frame.to_vec());
                    }
                    None
                }
            };
            if let Some(code) = finished
                && let Some(p) = self.pending.remove(&seq)
            {
                let outcome = if code == 0 {
                    Ok(p.replies)
                } else {
                    Err(code.saturating_abs())
                };
                done.push((seq, outcome));
            }
        }
        Ok(done)
    }
}

/// The error code that closes a request: from `NLMSG_ERROR` (0 = ACK) or `NLMSG_DONE`
/// (0, or a negative errno if the dump failed half-way; the kernel may leave it out).
fn closing_code(payload: &[u8], kind: u16) -> Result<i32, DecodeError> {
    match payload.get(..4) {
        Some(b) => Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None if kind == NLMSG_DONE => Ok(0),
        None => Err(DecodeError::from("NLMSG_ERROR shorter than its error code")),
    }
}

/// Splits a datagram into netlink frames (each `nlmsg_len` bytes, 4-byte aligned).
pub fn frames(datagram: &[u8]) -> impl Iterator<Item = Result<&[u8], DecodeError>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(len_bytes) = rest.get(..4) else {
            rest = &[];
            return Some(Err(DecodeError::from("truncated netlink header")));
        };
        let len =
            u32::from_ne_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if len < HEADER_LEN || len > rest.len() {
            rest = &[];
            return Some(Err(DecodeError::from(format!(
                "netlink frame length {len} does not fit the {} bytes left",
                rest.len()
            ))));
        }
        let frame = &rest[..len];
        let aligned = (len + 3) & !3;
        rest = rest.get(aligned..).unwrap_or(&[]);
        Some(Ok(frame))
    })
}

/// Serializes one generic netlink request.
pub fn encode<F>(payload: F, family_id: u16, flags: u16, seq: u32) -> Vec<u8>
where
    F: GenlFamily + Emitable + Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family_id);
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = flags;
    msg.header.sequence_number = seq;
    // 0: the kernel fills in our port when it delivers replies.
    msg.header.port_number = 0;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Decodes one frame holding a message of family `F`.
pub fn decode<F>(frame: &[u8]) -> Result<F, DecodeError>
where
    GenlMessage<F>: NetlinkDeserializable,
    F: Debug,
{
    let msg = NetlinkMessage::<GenlMessage<F>>::deserialize(frame)?;
    match msg.payload {
        NetlinkPayload::InnerMessage(genl) => Ok(genl.payload),
        _ => Err(DecodeError::from(
            "expected a generic netlink message, got a control message",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (HEADER_LEN + payload.len()) as u32;
        let mut f = Vec::new();
        f.extend(len.to_ne_bytes());
        f.extend(kind.to_ne_bytes());
        f.extend(flags.to_ne_bytes());
        f.extend(seq.to_ne_bytes());
        f.extend(0u32.to_ne_bytes());
        f.extend(payload);
        while f.len() % 4 != 0 {
            f.push(0);
        }
        f
    }

    fn ack(seq: u32, code: i32) -> Vec<u8> {
        let mut p = code.to_ne_bytes().to_vec();
        p.extend(frame(0x20, 5, seq, &[])); // the echoed request header
        frame(NLMSG_ERROR, 0x100, seq, &p[..20])
    }

    #[test]
    fn acks_and_errors_close_their_own_requests() {
        let mut x = Exchange::new(100);
        let (a, b, c) = (x.register(), x.register(), x.register());
        let mut datagram = ack(b, -17);
        datagram.extend(ack(a, 0));
        let done = x.feed(&datagram).unwrap();
        assert_eq!(done, vec![(b, Err(17)), (a, Ok(vec![]))]);
        assert!(x.is_pending(c));
        assert_eq!(x.pending_len(), 1);
    }

    #[test]
    fn dumps_collect_multipart_frames_across_datagrams_until_done() {
        let mut x = Exchange::new(7);
        let seq = x.register();
        let one = frame(0x20, 2, seq, &[1, 1, 0, 0]);
        let two = frame(0x20, 2, seq, &[1, 1, 0, 0, 9, 9, 9, 9]);
        assert!(x.feed(&one).unwrap().is_empty());
        let mut last = two.clone();
        last.extend(frame(NLMSG_DONE, 2, seq, &0i32.to_ne_bytes()));
        let done = x.feed(&last).unwrap();
        assert_eq!(done, vec![(seq, Ok(vec![one, two]))]);
    }

    #[test]
    fn a_dump_that_cannot_start_ends_with_its_errno() {
        let mut x = Exchange::new(1);
        let seq = x.register();
        assert_eq!(x.feed(&ack(seq, -1)).unwrap(), vec![(seq, Err(1))]);
        // DONE without a code (old kernels) is success.
        let seq = x.register();
        assert_eq!(
            x.feed(&frame(NLMSG_DONE, 2, seq, &[])).unwrap(),
            vec![(seq, Ok(vec![]))]
        );
    }

    #[test]
    fn replies_to_abandoned_requests_are_stale() {
        let mut x = Exchange::new(1);
        let old = x.register();
        x.abandon_all();
        let new = x.register();
        let mut datagram = frame(0x20, 0, old, &[1, 1, 0, 0]);
        datagram.extend(ack(old, 0));
        datagram.extend(ack(new, 0));
        assert_eq!(x.feed(&datagram).unwrap(), vec![(new, Ok(vec![]))]);
        assert_eq!(x.stale(), 2);
    }

    #[test]
    fn sequence_numbers_skip_zero_when_they_wrap() {
        let mut x = Exchange::new(u32::MAX);
        assert_eq!(x.register(), u32::MAX);
        assert_eq!(x.register(), 1);
    }

    #[test]
    fn broken_frames_are_errors_not_panics() {
        let mut x = Exchange::new(1);
        x.register();
        for bad in [&[1u8, 2][..], &[200, 0, 0, 0, 2, 0][..], &[4, 0, 0, 0][..]] {
            assert!(x.feed(bad).is_err(), "{bad:?}");
        }
        let seq = x.register();
        let short_error = frame(NLMSG_ERROR, 0, seq, &[1, 2]);
        assert!(x.feed(&short_error).is_err());
    }
}
