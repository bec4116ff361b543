//! The host's address table as the real-server setup sees it: a trait with the netlink
//! client ([`RtnlClient`]) and an in-memory table (tests) behind it.

use std::future::Future;
use std::net::IpAddr;

pub use crate::rtnl::Change;
use crate::rtnl::{RtnlClient, if_index, if_name};

use super::error::RealServerError;
use super::vip::Vip;

/// One address of the host, with the name of its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    pub dev: String,
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// What `ldirectord realserver` needs from the kernel's address table.
pub trait AddressTable {
    /// Every IPv4 and IPv6 address of every interface.
    fn list(&mut self) -> impl Future<Output = Result<Vec<HostAddress>, RealServerError>>;

    /// The index of interface `dev`.
    fn index_of(&mut self, dev: &str) -> Result<u32, RealServerError>;

    /// Adds `vip` (host prefix) to interface `index`.
    fn add(
        &mut self,
        index: u32,
        vip: Vip,
    ) -> impl Future<Output = Result<Change, RealServerError>>;

    /// Removes `addr/prefix_len` from interface `index`.
    fn remove(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> impl Future<Output = Result<Change, RealServerError>>;
}

/// An in-memory address table with a fixed set of interfaces.
#[derive(Debug, Clone, Default)]
pub struct MemoryTable {
    pub interfaces: Vec<(u32, String)>,
    pub addresses: Vec<HostAddress>,
    /// Errno to fail the next `add`/`remove` with (tests of partial failure).
    pub fail_next: Option<i32>,
}

impl MemoryTable {
    pub fn new(interfaces: &[&str]) -> MemoryTable {
        MemoryTable {
            interfaces: (1..)
                .zip(interfaces.iter().map(|s| s.to_string()))
                .collect(),
            ..MemoryTable::default()
        }
    }

    pub fn with(mut self, dev: &str, addr: &str, prefix_len: u8) -> MemoryTable {
        let index = self.index_of(dev).unwrap_or(0);
        self.addresses.push(HostAddress {
            dev: dev.to_string(),
            index,
            addr: addr.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            prefix_len,
        });
        self
    }

    fn name(&self, index: u32) -> String {
        self.interfaces
            .iter()
            .find(|(i, _)| *i == index)
            .map_or_else(|| format!("if{index}"), |(_, n)| n.clone())
    }

    fn refuse(&mut self, what: &str) -> Result<(), RealServerError> {
        match self.fail_next.take() {
            Some(errno) => Err(RealServerError::Rtnl(crate::rtnl::RtnlError::Kernel {
                what: what.to_string(),
                errno,
            })),
            None => Ok(()),
        }
    }
}

impl AddressTable for MemoryTable {
    async fn list(&mut self) -> Result<Vec<HostAddress>, RealServerError> {
        Ok(self.addresses.clone())
    }

    fn index_of(&mut self, dev: &str) -> Result<u32, RealServerError> {
        self.interfaces
            .iter()
            .find(|(_, n)| n == dev)
            .map(|(i, _)| *i)
            .ok_or_else(|| RealServerError::NoSuchDevice(dev.to_string()))
    }

    async fn add(&mut self, index: u32, vip: Vip) -> Result<Change, RealServerError> {
        self.refuse("adding an address")?;
        let exists = self
            .addresses
            .iter()
            .any(|a| a.index == index && a.addr == vip.addr() && a.prefix_len == vip.prefix_len());
        if exists {
            return Ok(Change::AlreadySo);
        }
        let dev = self.name(index);
        self.addresses.push(HostAddress {
            dev,
            index,
            addr: vip.addr(),
            prefix_len: vip.prefix_len(),
        });
        Ok(Change::Made)
    }

    async fn remove(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<Change, RealServerError> {
        self.refuse("removing an address")?;
        let before = self.addresses.len();
        self.addresses
            .retain(|a| !(a.index == index && a.addr == addr && a.prefix_len == prefix_len));
        Ok(if self.addresses.len() < before {
            Change::Made
        } else {
            Change::AlreadySo
        })
    }
}

impl AddressTable for RtnlClient {
    async fn list(&mut self) -> Result<Vec<HostAddress>, RealServerError> {
        let entries = self.addresses().await?;
        let mut names: Vec<(u32, String)> = Vec::new();
        Ok(entries
            .into_iter()
            .map(|e| {
                let dev = match names.iter().find(|(i, _)| *i == e.index) {
                    Some((_, n)) => n.clone(),
                    None => {
                        let n = if_name(e.index);
                        names.push((e.index, n.clone()));
                        n
                    }
                };
                HostAddress {
                    dev,
                    index: e.index,
                    addr: e.addr,
                    prefix_len: e.prefix_len,
                }
            })
            .collect())
    }

    fn index_of(&mut self, dev: &str) -> Result<u32, RealServerError> {
        super::sysctl::check_iface_name(dev)?;
        if_index(dev).ok_or_else(|| RealServerError::NoSuchDevice(dev.to_string()))
    }

    async fn add(&mut self, index: u32, vip: Vip) -> Result<Change, RealServerError> {
        Ok(self
            .add_address(index, vip.addr(), vip.prefix_len())
            .await?)
    }

    async fn remove(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<Change, RealServerError> {
        Ok(self.delete_address(index, addr, prefix_len).await?)
    }
}
