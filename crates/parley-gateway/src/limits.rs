//! Limits the edge keeps per client address: which key an address counts under, and how
//! many WebSockets one address holds open.
//!
//! IPv6 clients usually get a whole /64, so they are counted per /64 (one address each
//! would let one host use 2^64 keys); IPv4-mapped IPv6 addresses count as the IPv4 address.
//! Per-user and per-device socket caps live in the [`Hub`](crate::hub::Hub), which knows
//! who a socket belongs to.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// The key an address is limited under: IPv4 as is, IPv6 by its /64.
pub fn ip_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

/// Open sockets per address key, with a cap.
#[derive(Default)]
pub struct SocketsPerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted socket; dropping it gives the slot back.
pub struct IpSlot {
    owner: Arc<SocketsPerIp>,
    key: IpAddr,
}

impl SocketsPerIp {
    /// Takes a slot for `address` if it holds fewer than `limit` sockets.
    pub fn try_open(self: &Arc<Self>, address: IpAddr, limit: usize) -> Option<IpSlot> {
        let key = ip_key(address);
        let mut open = self.open.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: self.clone(),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn slots_are_capped_and_given_back() {
        let sockets = Arc::new(SocketsPerIp::default());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let first = sockets.try_open(a, 2).unwrap();
        let _second = sockets.try_open(b, 2).unwrap();
        assert!(sockets.try_open(a, 2).is_none(), "same /64: the cap holds");
        drop(first);
        assert!(sockets.try_open(b, 2).is_some());
    }
}
