//! `IpvsClient`: the kernel's IPVS table over one generic netlink socket.
//!
//! The family id is resolved once, at connect. Every round trip has a deadline (a kernel
//! that never answers is [`IpvsError::Timeout`], not a hang). [`Backend::apply`] packs
//! many requests into one `sendmsg`, each with `NLM_F_ACK`, and matches the ACKs by
//! sequence number, so a batch costs one system call each way instead of ipvsadm's new
//! socket and family lookup per command. Dumps are multipart and may span datagrams.
//!
//! The bookkeeping is [`Exchange`]; this file only moves bytes.

use std::fmt::Debug;
use std::time::Duration;

use netlink_packet_core::Emitable;
use netlink_packet_generic::GenlFamily;
use netlink_sys::{
    AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_GENERIC,
};
use tokio::time::{Instant, timeout_at};

use super::backend::{Backend, OpResults};
use super::codec::{FAMILY_NAME, IpvsMessage};
use super::convert;
use super::ctrl::{CTRL_FAMILY_ID, CtrlMessage};
use super::error::{IpvsError, Subject};
use super::exchange::{Exchange, Expect, Outcome, decode, encode};
use super::model::{Daemon, Dest, Info, Service, ServiceKey, Timeouts};
use super::op::Op;

/// Dump datagrams are at most 32 KiB (the kernel caps its dump allocations there). A
/// datagram that did not fit would show up as a frame running past the data received,
/// which the frame parser reports.
const RECV_BUFFER: usize = 64 * 1024;

/// Receive-buffer space to budget per ACK: the kernel charges a socket an ACK's whole
/// allocation (about 1 KiB on x86_64); twice that leaves room for anything else queued.
/// In the VM, 1,024 requests in one `sendmsg` overflowed the default 416 KiB buffer.
const ACK_COST: usize = 2048;

/// Tunables of an [`IpvsClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one round trip (one batch, one dump, one lookup) may take.
    pub timeout: Duration,
    /// Requests per `sendmsg`. The kernel answers all of them before we read, and each
    /// ACK costs about 1 KiB of the socket's receive buffer in its accounting; when the
    /// buffer overflows, ACKs are lost (ENOBUFS). So the client also caps this at one
    /// request per 2 KiB of the receive buffer it actually got.
    pub max_batch: usize,
    /// Receive buffer to ask for (`SO_RCVBUF`, capped by `net.core.rmem_max`).
    pub recv_buffer: usize,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            timeout: Duration::from_secs(5),
            max_batch: 128,
            recv_buffer: 1 << 20,
        }
    }
}

/// A connection to the kernel's IPVS table (the current network namespace's).
pub struct IpvsClient {
    socket: TokioSocket,
    family_id: u16,
    exchange: Exchange,
    options: ClientOptions,
    /// `options.max_batch`, capped by the receive buffer.
    batch_limit: usize,
    recv_buf: Vec<u8>,
}

impl Debug for IpvsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpvsClient")
            .field("family_id", &self.family_id)
            .field("pending", &self.exchange.pending_len())
            .finish()
    }
}

impl IpvsClient {
    /// Opens the socket and resolves the `IPVS` family.
    ///
    /// Fails with [`IpvsError::IpvsMissing`] when the module is not loaded (the kernel
    /// tries to load it on lookup if it can) and with [`IpvsError::PermissionDenied`]
    /// later, on the first request, without CAP_NET_ADMIN.
    pub async fn connect() -> Result<IpvsClient, IpvsError> {
        IpvsClient::connect_with(ClientOptions::default()).await
    }

    pub async fn connect_with(options: ClientOptions) -> Result<IpvsClient, IpvsError> {
        let mut client = IpvsClient::open(options, None)?;
        client.family_id = client.resolve_family().await?;
        Ok(client)
    }

    /// A client whose socket talks to `peer` (a netlink port id; `None`: the kernel).
    /// Tests point it at a socket of their own that plays the kernel.
    fn open(options: ClientOptions, peer: Option<u32>) -> Result<IpvsClient, IpvsError> {
        let mut socket = TokioSocket::new(NETLINK_GENERIC)?;
        let raw = socket.socket_mut();
        raw.bind_auto()?;
        // Errors come back with only the request's header, not the whole request echoed.
        raw.set_cap_ack(true)?;
        // Best effort: a smaller buffer only makes large batches riskier.
        let _ = raw.set_rx_buf_sz(options.recv_buffer);
        let rcvbuf = raw.get_rx_buf_sz().unwrap_or(0);
        if let Some(port) = peer {
            raw.connect(&SocketAddr::new(port, 0))?;
        }
        Ok(IpvsClient {
            socket,
            family_id: 0,
            exchange: Exchange::new(first_sequence()),
            batch_limit: options.max_batch.min(rcvbuf / ACK_COST).max(1),
            options,
            recv_buf: vec![0u8; RECV_BUFFER],
        })
    }

    /// The numeric id the kernel gave the `IPVS` family.
    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    /// Replies that arrived after their request's deadline (and were dropped).
    pub fn stale_replies(&self) -> u64 {
        self.exchange.stale()
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// How many requests one `sendmsg` carries.
    pub fn batch_limit(&self) -> usize {
        self.batch_limit
    }

    async fn resolve_family(&mut self) -> Result<u16, IpvsError> {
        self.resolve_family_named(FAMILY_NAME).await
    }

    async fn resolve_family_named(&mut self, name: &str) -> Result<u16, IpvsError> {
        let request = CtrlMessage::get_family(name);
        let outcome = self
            .round_trip(CTRL_FAMILY_ID, vec![(Expect::Ack, request)])
            .await?
            .remove(0);
        let frames = outcome.map_err(|errno| IpvsError::from_errno(errno, Subject::Family))?;
        frames
            .iter()
            .find_map(|f| decode::<CtrlMessage>(f).ok().and_then(|m| m.family_id()))
            .ok_or_else(|| IpvsError::Protocol("nlctrl reply without a family id".into()))
    }

    /// Sends `requests` in one datagram and waits until each is closed or the deadline
    /// passes. Results are in request order.
    async fn round_trip<F>(
        &mut self,
        family_id: u16,
        requests: Vec<(Expect, F)>,
    ) -> Result<Vec<Outcome>, IpvsError>
    where
        F: GenlFamily + Emitable + Debug,
    {
        let deadline = Instant::now() + self.options.timeout;
        let mut datagram = Vec::new();
        let mut seqs = Vec::with_capacity(requests.len());
        for (expect, payload) in requests {
            let seq = self.exchange.register();
            datagram.extend(encode(payload, family_id, expect.flags(), seq));
            seqs.push(seq);
        }
        let result = self.send_and_collect(&datagram, &seqs, deadline).await;
        if result.is_err() {
            // Whatever still comes for this batch is of no use to anyone.
            self.exchange.abandon_all();
        }
        result
    }

    async fn send_and_collect(
        &mut self,
        datagram: &[u8],
        seqs: &[u32],
        deadline: Instant,
    ) -> Result<Vec<Outcome>, IpvsError> {
        let limit = self.options.timeout;
        timeout_at(deadline, self.send(datagram))
            .await
            .map_err(|_| IpvsError::Timeout(limit))??;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; seqs.len()];
        let mut open = seqs.len();
        while open > 0 {
            let len = timeout_at(deadline, self.recv())
                .await
                .map_err(|_| IpvsError::Timeout(limit))??;
            let completed = self
                .exchange
                .feed(&self.recv_buf[..len])
                .map_err(|e| IpvsError::Protocol(e.to_string()))?;
            for (seq, outcome) in completed {
                if let Some(i) = seqs.iter().position(|s| *s == seq)
                    && outcomes[i].is_none()
                {
                    outcomes[i] = Some(outcome);
                    open -= 1;
                }
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    async fn send(&self, datagram: &[u8]) -> Result<(), IpvsError> {
        let sent = self.socket.send(datagram).await?;
        if sent != datagram.len() {
            return Err(IpvsError::Protocol(format!(
                "short netlink send: {sent} of {} bytes",
                datagram.len()
            )));
        }
        Ok(())
    }

    /// One datagram into `recv_buf`; its length. ENOBUFS (replies lost because the
    /// receive buffer overflowed) comes out as an I/O error.
    async fn recv(&mut self) -> Result<usize, IpvsError> {
        let capacity = self.recv_buf.len();
        let mut free: &mut [u8] = &mut self.recv_buf[..];
        self.socket.recv(&mut free).await?;
        Ok(capacity - free.len())
    }

    async fn ipvs_round_trip(
        &mut self,
        requests: Vec<(Expect, IpvsMessage)>,
    ) -> Result<Vec<Outcome>, IpvsError> {
        if self.family_id == 0 {
            return Err(IpvsError::IpvsMissing);
        }
        self.round_trip(self.family_id, requests).await
    }

    /// One request; its data frames, or the kernel's errno read for `subject`.
    async fn one_frames(
        &mut self,
        expect: Expect,
        request: IpvsMessage,
        subject: Subject,
    ) -> Result<Vec<Vec<u8>>, IpvsError> {
        let outcome = self
            .ipvs_round_trip(vec![(expect, request)])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| IpvsError::Protocol("no outcome for a request".into()))?;
        outcome.map_err(|errno| IpvsError::from_errno(errno, subject))
    }

    /// One request; its data frames decoded.
    async fn one(
        &mut self,
        expect: Expect,
        request: IpvsMessage,
        subject: Subject,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        self.one_frames(expect, request, subject)
            .await?
            .iter()
            .map(|f| decode::<IpvsMessage>(f).map_err(|e| IpvsError::Protocol(e.to_string())))
            .collect()
    }
}

impl Backend for IpvsClient {
    async fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        let replies = self
            .one(
                Expect::Dump,
                convert::get_services_request(),
                Subject::Table,
            )
            .await?;
        replies.iter().map(convert::service_from_reply).collect()
    }

    async fn dests(&mut self, service: &ServiceKey) -> Result<Vec<Dest>, IpvsError> {
        let frames = self
            .one_frames(
                Expect::Dump,
                convert::get_dests_request(service),
                Subject::Service,
            )
            .await?;
        let family = service.family();
        frames
            .iter()
            .map(|f| convert::dest_from_frame(f, family))
            .collect()
    }

    async fn service(&mut self, key: &ServiceKey) -> Result<Service, IpvsError> {
        let replies = self
            .one(
                Expect::Ack,
                convert::get_service_request(key),
                Subject::Service,
            )
            .await?;
        let first = replies
            .first()
            .ok_or_else(|| IpvsError::Protocol("GET_SERVICE answered without a service".into()))?;
        convert::service_from_reply(first)
    }

    async fn info(&mut self) -> Result<Info, IpvsError> {
        let replies = self
            .one(Expect::Ack, convert::get_info_request(), Subject::Table)
            .await?;
        let first = replies
            .first()
            .ok_or_else(|| IpvsError::Protocol("GET_INFO answered without data".into()))?;
        convert::info_from_reply(first)
    }

    async fn timeouts(&mut self) -> Result<Timeouts, IpvsError> {
        let replies = self
            .one(Expect::Ack, convert::get_config_request(), Subject::Table)
            .await?;
        let first = replies
            .first()
            .ok_or_else(|| IpvsError::Protocol("GET_CONFIG answered without data".into()))?;
        convert::timeouts_from_reply(first)
    }

    async fn daemons(&mut self) -> Result<Vec<Daemon>, IpvsError> {
        let replies = self
            .one(
                Expect::Dump,
                convert::get_daemons_request(),
                Subject::Daemon,
            )
            .await?;
        replies.iter().map(convert::daemon_from_reply).collect()
    }

    async fn apply(&mut self, ops: &[Op]) -> Result<OpResults, IpvsError> {
        let mut results = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(self.batch_limit) {
            let requests = chunk
                .iter()
                .map(|op| (Expect::Ack, convert::op_request(op)))
                .collect();
            let outcomes = self.ipvs_round_trip(requests).await?;
            for (op, outcome) in chunk.iter().zip(outcomes) {
                results.push(
                    outcome
                        .map(drop)
                        .map_err(|errno| IpvsError::from_errno(errno, op.subject())),
                );
            }
        }
        Ok(results)
    }
}

/// A starting sequence number that differs between processes and runs.
fn first_sequence() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::codec::{IpvsAttr, IpvsCmd, Nested};
    use crate::ipvs::ctrl::{CMD_NEWFAMILY, CtrlAttr};
    use crate::ipvs::exchange::frames;
    use crate::ipvs::{Family, Forward};
    use netlink_packet_core::{NLM_F_MULTIPART, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer};

    const IPVS_ID: u16 = 0x20;

    /// Header fields of a received request.
    fn seq_of(frame: &[u8]) -> u32 {
        NetlinkBuffer::new_checked(frame).unwrap().sequence_number()
    }

    fn ack(request: &[u8], code: i32) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(36u32.to_ne_bytes());
        f.extend(NLMSG_ERROR.to_ne_bytes());
        f.extend(0x100u16.to_ne_bytes());
        f.extend(seq_of(request).to_ne_bytes());
        f.extend(0u32.to_ne_bytes());
        f.extend(code.to_ne_bytes());
        f.extend(&request[..16]);
        f
    }

    fn done(request: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(20u32.to_ne_bytes());
        f.extend(NLMSG_DONE.to_ne_bytes());
        f.extend(NLM_F_MULTIPART.to_ne_bytes());
        f.extend(seq_of(request).to_ne_bytes());
        f.extend(0u32.to_ne_bytes());
        f.extend(0i32.to_ne_bytes());
        f
    }

    fn reply(request: &[u8], msg: IpvsMessage, flags: u16) -> Vec<u8> {
        encode(msg, IPVS_ID, flags, seq_of(request))
    }

    /// A netlink socket that plays the kernel: `script` gets each request datagram and
    /// returns the datagrams to answer with.
    async fn fake_peer<S>(mut script: S) -> u32
    where
        S: FnMut(Vec<&[u8]>) -> Vec<Vec<u8>> + Send + 'static,
    {
        let mut socket = TokioSocket::new(NETLINK_GENERIC).unwrap();
        let addr = socket.socket_mut().bind_auto().unwrap();
        tokio::spawn(async move {
            loop {
                // A Vec receives into its spare capacity and grows its length by what came.
                let mut buf = Vec::with_capacity(65536);
                let Ok(from) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let requests: Vec<&[u8]> = frames(&buf).map(|f| f.unwrap()).collect();
                for answer in script(requests) {
                    socket.send_to(&answer, &from).await.unwrap();
                }
            }
        });
        addr.port_number()
    }

    fn client_for(port: u32, timeout: Duration) -> IpvsClient {
        let options = ClientOptions {
            timeout,
            ..ClientOptions::default()
        };
        let mut client = IpvsClient::open(options, Some(port)).unwrap();
        client.family_id = IPVS_ID;
        client
    }

    #[tokio::test]
    async fn the_family_id_comes_from_nlctrl() {
        let port = fake_peer(|requests| {
            let req = requests[0];
            let answer = CtrlMessage {
                cmd: CMD_NEWFAMILY,
                version: 2,
                attrs: vec![
                    CtrlAttr::FamilyName("IPVS".into()),
                    CtrlAttr::FamilyId(0x2a),
                ],
            };
            let mut d = encode(answer, CTRL_FAMILY_ID, 0, seq_of(req));
            d.extend(ack(req, 0));
            vec![d]
        })
        .await;
        let mut client = client_for(port, Duration::from_secs(5));
        assert_eq!(client.resolve_family().await.unwrap(), 0x2a);
    }

    #[tokio::test]
    async fn an_unknown_family_means_ipvs_is_missing() {
        // The real kernel's nlctrl answers this one, root or not.
        let mut client = IpvsClient::open(ClientOptions::default(), None).unwrap();
        let err = client
            .resolve_family_named("ldirectord-none")
            .await
            .unwrap_err();
        assert!(matches!(err, IpvsError::IpvsMissing), "{err:?}");
        assert!(err.hint().unwrap().contains("modprobe ip_vs"));
    }

    #[tokio::test]
    async fn a_batch_is_one_datagram_and_acks_match_by_sequence() {
        let port = fake_peer(|requests| {
            assert_eq!(requests.len(), 3, "all ops in one sendmsg");
            // Answer out of order, one split into its own datagram; the second op fails.
            vec![
                [ack(requests[2], 0), ack(requests[1], -17)].concat(),
                ack(requests[0], 0),
            ]
        })
        .await;
        let mut client = client_for(port, Duration::from_secs(5));
        let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
        let ops = [
            Op::AddService(Service::new(key, "rr")),
            Op::AddDest {
                service: key,
                dest: Dest::new("10.0.0.2".parse().unwrap(), 80, Forward::Route, 1),
            },
            Op::Zero(None),
        ];
        let results = client.apply(&ops).await.unwrap();
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(IpvsError::DestExists)));
        assert!(results[2].is_ok());
    }

    #[tokio::test]
    async fn big_batches_are_split_into_rounds() {
        let port = fake_peer(|requests| {
            assert!(requests.len() <= 2);
            vec![requests.iter().flat_map(|r| ack(r, 0)).collect()]
        })
        .await;
        let mut client = client_for(port, Duration::from_secs(5));
        client.batch_limit = 2;
        let results = client.apply(&vec![Op::Flush; 5]).await.unwrap();
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn dumps_span_datagrams_and_skip_stale_frames() {
        let port = fake_peer(|requests| {
            let req = requests[0];
            let svc = |mark| {
                let s = Service::new(ServiceKey::fwmark(Family::Inet, mark), "wlc");
                IpvsMessage::new(
                    IpvsCmd::NewService,
                    vec![IpvsAttr::Service(Nested {
                        attrs: convert::service_dump_attrs(&s),
                        flag: false,
                    })],
                )
            };
            let mut stale = req.to_vec();
            stale[8..12].copy_from_slice(&seq_of(req).wrapping_sub(1).to_ne_bytes());
            vec![
                [reply(req, svc(1), NLM_F_MULTIPART), ack(&stale, 0)].concat(),
                [reply(req, svc(2), NLM_F_MULTIPART), done(req)].concat(),
            ]
        })
        .await;
        let mut client = client_for(port, Duration::from_secs(5));
        let services = client.services().await.unwrap();
        let marks: Vec<_> = services.iter().map(|s| s.key).collect();
        assert_eq!(
            marks,
            [
                ServiceKey::fwmark(Family::Inet, 1),
                ServiceKey::fwmark(Family::Inet, 2)
            ]
        );
        assert_eq!(client.stale_replies(), 1);
    }

    #[tokio::test]
    async fn errnos_become_typed_errors() {
        let port = fake_peer(|requests| vec![ack(requests[0], -3)]).await;
        let mut client = client_for(port, Duration::from_secs(5));
        let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
        assert!(matches!(
            client.service(&key).await,
            Err(IpvsError::NoSuchService)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kernel_that_never_answers_is_a_timeout() {
        let port = fake_peer(|_| vec![]).await;
        let mut client = client_for(port, Duration::from_secs(3));
        let err = client.info().await.unwrap_err();
        assert!(matches!(err, IpvsError::Timeout(d) if d == Duration::from_secs(3)));
        assert_eq!(client.exchange.pending_len(), 0);
    }
}
