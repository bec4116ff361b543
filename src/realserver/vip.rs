//! The VIPs a real server accepts traffic for: host addresses, parsed strictly.

use std::fmt;
use std::net::IpAddr;

use super::error::RealServerError;

/// A virtual IP held by a real server as a host route (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip(IpAddr);

impl Vip {
    pub fn new(addr: IpAddr) -> Result<Vip, RealServerError> {
        let bad = |why| Err(RealServerError::BadVip(addr.to_string(), why));
        match addr {
            IpAddr::V4(a) => {
                if a.is_unspecified() || a.is_broadcast() {
                    return bad("not a host address");
                }
                if a.is_loopback() {
                    return bad("a loopback address (127.0.0.0/8) cannot be a VIP");
                }
                if a.is_multicast() {
                    return bad("a multicast address cannot be a VIP");
                }
            }
            IpAddr::V6(a) => {
                if a.is_unspecified() || a.is_loopback() {
                    return bad("not a host address");
                }
                if a.is_multicast() {
                    return bad("a multicast address cannot be a VIP");
                }
                if a.is_unicast_link_local() {
                    return bad("a link-local address cannot be a VIP");
                }
                if a.to_ipv4_mapped().is_some() {
                    return bad("write an IPv4-mapped address as plain IPv4");
                }
            }
        }
        Ok(Vip(addr))
    }

    pub fn addr(self) -> IpAddr {
        self.0
    }

    /// The host prefix: the VIP alone, not the subnet around it, is local.
    pub fn prefix_len(self) -> u8 {
        if self.0.is_ipv4() { 32 } else { 128 }
    }

    pub fn is_ipv4(self) -> bool {
        self.0.is_ipv4()
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0, self.prefix_len())
    }
}

/// Parses `VIP[,VIP…]` words (several words are allowed too). `/32` and `/128` may be
/// written; any other prefix is refused, since a wider one on the loopback would make the
/// whole subnet local and cut the real server off from its neighbours. Duplicates are
/// dropped; the order is kept.
pub fn parse_vips<S: AsRef<str>>(words: &[S]) -> Result<Vec<Vip>, RealServerError> {
    let mut vips: Vec<Vip> = Vec::new();
    for item in words
        .iter()
        .flat_map(|w| w.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (text, prefix) = match item.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (item, None),
        };
        let text = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        let addr: IpAddr = text
            .parse()
            .map_err(|_| RealServerError::BadVip(item.to_string(), "not an IP address"))?;
        let vip = Vip::new(addr)?;
        if let Some(p) = prefix
            && p.parse::<u8>().ok() != Some(vip.prefix_len())
        {
            return Err(RealServerError::BadVip(
                item.to_string(),
                "only a host prefix (/32, /128) is allowed on the loopback",
            ));
        }
        if !vips.contains(&vip) {
            vips.push(vip);
        }
    }
    if vips.is_empty() {
        return Err(RealServerError::NoVip);
    }
    Ok(vips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Vec<String>, String> {
        parse_vips(words)
            .map(|v| v.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lists_words_prefixes_and_brackets() {
        assert_eq!(
            parse(&["10.0.0.100,fd00::100", "[fd00::101]/128", "10.0.0.101/32"]).unwrap(),
            [
                "10.0.0.100/32",
                "fd00::100/128",
                "fd00::101/128",
                "10.0.0.101/32"
            ]
        );
        assert_eq!(parse(&["10.0.0.1,,10.0.0.1, "]).unwrap(), ["10.0.0.1/32"]);
    }

    #[test]
    fn refuses_what_cannot_be_a_vip() {
        for bad in [
            "10.0.0.0/24",
            "fd00::1/64",
            "10.0.0.1/x",
            "127.0.0.2",
            "::1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "host.example",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} accepted");
        }
        assert_eq!(parse(&[",", ""]).unwrap_err(), "no VIP given");
    }
}
