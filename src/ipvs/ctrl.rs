//! Just enough of nlctrl (generic netlink's controller) to look up a family id by name.
//!
//! netlink-packet-generic has a full nlctrl codec, but it refuses attributes it does not
//! know; a family lookup only needs the id, so this one keeps everything else raw.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// `GENL_ID_CTRL`: nlctrl's fixed family id.
pub const CTRL_FAMILY_ID: u16 = 0x10;
/// `CTRL_CMD_NEWFAMILY`: the command of a lookup's reply.
pub const CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`.
pub const CMD_GETFAMILY: u8 = 3;

/// `CTRL_ATTR_*` we read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtrlAttr {
    FamilyId(u16),
    FamilyName(String),
    Other(DefaultNla),
}

impl Nla for CtrlAttr {
    fn value_len(&self) -> usize {
        match self {
            CtrlAttr::FamilyId(_) => 2,
            CtrlAttr::FamilyName(s) => s.len() + 1,
            CtrlAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            CtrlAttr::FamilyId(_) => 1,
            CtrlAttr::FamilyName(_) => 2,
            CtrlAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            CtrlAttr::FamilyId(id) => buffer.copy_from_slice(&id.to_ne_bytes()),
            CtrlAttr::FamilyName(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            CtrlAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl CtrlAttr {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<CtrlAttr, DecodeError> {
        let flagged = buf.nested_flag() || buf.network_byte_order_flag();
        let value = buf.value();
        Ok(match buf.kind() {
            1 if !flagged && value.len() == 2 => {
                CtrlAttr::FamilyId(u16::from_ne_bytes([value[0], value[1]]))
            }
            2 if !flagged && value.last() == Some(&0) => {
                let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
                CtrlAttr::FamilyName(String::from_utf8_lossy(&value[..end]).into_owned())
            }
            _ => CtrlAttr::Other(super::codec::other(buf)?),
        })
    }
}

/// An nlctrl message payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrlMessage {
    pub cmd: u8,
    pub version: u8,
    pub attrs: Vec<CtrlAttr>,
}

impl CtrlMessage {
    /// `CTRL_CMD_GETFAMILY` for `name`, with the version byte libnl sends.
    pub fn get_family(name: &str) -> CtrlMessage {
        CtrlMessage {
            cmd: CMD_GETFAMILY,
            version: 1,
            attrs: vec![CtrlAttr::FamilyName(name.to_string())],
        }
    }

    pub fn family_id(&self) -> Option<u16> {
        self.attrs.iter().find_map(|a| match a {
            CtrlAttr::FamilyId(id) => Some(*id),
            _ => None,
        })
    }
}

impl GenlFamily for CtrlMessage {
    fn family_name() -> &'static str {
        "nlctrl"
    }

    fn family_id(&self) -> u16 {
        CTRL_FAMILY_ID
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        self.version
    }
}

impl Emitable for CtrlMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for CtrlMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<CtrlMessage, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| CtrlAttr::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CtrlMessage {
            cmd: header.cmd,
            version: header.version,
            attrs,
        })
    }
}
