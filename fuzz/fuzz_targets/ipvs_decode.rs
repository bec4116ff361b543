//! Arbitrary bytes as a datagram from the kernel: the exchange, the IPVS and nlctrl
//! decoders and the model conversions must never panic, and whatever decodes must decode
//! to the same thing again after being emitted.

#![no_main]

use ldirectord::ipvs::codec::{IpvsAttr, IpvsCmd, IpvsMessage};
use ldirectord::ipvs::ctrl::CtrlMessage;
use ldirectord::ipvs::exchange::{self, Exchange};
use ldirectord::ipvs::{Family, convert};
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::NetlinkBuffer;

fuzz_target!(|data: &[u8]| {
    // The request/reply bookkeeping, with a request pending for the first frame's number.
    let seq = NetlinkBuffer::new_checked(data)
        .map(|b| b.sequence_number())
        .unwrap_or(1);
    let mut exchange = Exchange::new(seq);
    exchange.register();
    let _ = exchange.feed(data);

    for frame in exchange::frames(data).map_while(Result::ok) {
        let _ = exchange::decode::<CtrlMessage>(frame);
        // The listing's fast path must agree with the attribute tree.
        for family in [Family::Inet, Family::Inet6] {
            let fast = convert::dest_from_frame(frame, family).ok();
            let tree = exchange::decode::<IpvsMessage>(frame)
                .ok()
                .and_then(|m| convert::dest_from_reply(&m, family).ok());
            assert_eq!(fast, tree);
        }
        let Ok(msg) = exchange::decode::<IpvsMessage>(frame) else {
            continue;
        };
        check_model(&msg);
        // Emit what was decoded and decode it again: same message.
        let header = NetlinkBuffer::new_checked(frame).expect("decoded frames have headers");
        let again = exchange::encode(msg.clone(), header.message_type(), header.flags(), seq);
        let reparsed = exchange::decode::<IpvsMessage>(&again).expect("our own bytes decode");
        assert_eq!(reparsed, msg);
    }

    // The attribute layer on its own, under every command (SET_INFO numbers differ).
    for cmd in [IpvsCmd::NewService, IpvsCmd::SetInfo, IpvsCmd::NewDaemon] {
        if let Ok(attrs) = IpvsMessage::parse_attrs(data, cmd) {
            check_model(&IpvsMessage::new(cmd, attrs));
        }
    }
});

fn check_model(msg: &IpvsMessage) {
    let _ = convert::service_from_reply(msg);
    let _ = convert::daemon_from_reply(msg);
    let _ = convert::info_from_reply(msg);
    let _ = convert::timeouts_from_reply(msg);
    for family in [Family::Inet, Family::Inet6] {
        let _ = convert::dest_from_reply(msg, family);
    }
    for attr in &msg.attrs {
        if let IpvsAttr::Dest(nest) = attr {
            let _ = convert::dest_from_attrs(&nest.attrs, Family::Inet);
        }
    }
}
