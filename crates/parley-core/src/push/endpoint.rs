//! The SSRF guard on push endpoints: the server sends requests to whatever URL a client
//! subscribes with, so by default only `https` to a public address is taken. Names are
//! checked here by shape (no `localhost`, no single-label or internal names); the
//! addresses a name resolves to are checked again when a push is sent (DNS may change).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Longest endpoint URL taken, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;

/// `endpoint` as a URL the server may send pushes to: `https`, no credentials, a public
/// host (an address outside loopback, private, link-local, shared, documentation and
/// multicast ranges, or a name that is not `localhost`, single-label, `.local`,
/// `.internal`, `.localhost` or `.home.arpa`). `allow_insecure` (tests, a local
/// UnifiedPush distributor) also takes `http` and any host.
pub fn checked_endpoint(endpoint: &str, allow_insecure: bool) -> Result<Url, String> {
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(format!("endpoint is at most {MAX_ENDPOINT_BYTES} bytes"));
    }
    // Exactly as sent: no spaces or control characters for the URL parser to mend, and
    // the scheme in lower case (the schema's pattern says the same).
    let secure = endpoint.starts_with("https://");
    if !(secure || allow_insecure && endpoint.starts_with("http://"))
        || !endpoint.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(match allow_insecure {
            true => "endpoint must be an http(s) URL without spaces".into(),
            false => "endpoint must be an https URL without spaces".into(),
        });
    }
    let url = Url::parse(endpoint).map_err(|_| "endpoint must be an absolute URL".to_owned())?;
    match (url.scheme(), allow_insecure) {
        ("https", _) | ("http", true) => {}
        _ => return Err("endpoint must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint must not carry credentials".into());
    }
    let host = url
        .host()
        .ok_or_else(|| "endpoint must name a host".to_owned())?;
    if !allow_insecure {
        let public = match &host {
            Host::Ipv4(address) => is_public(IpAddr::V4(*address)),
            Host::Ipv6(address) => is_public(IpAddr::V6(*address)),
            Host::Domain(name) => is_public_name(name),
        };
        if !public {
            return Err("endpoint must be on a public address".into());
        }
    }
    Ok(url)
}

/// Whether a resolved address may receive pushes (checked again at send time).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 0 && address.octets()[2] == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && address.octets()[2] == 99) // 6to4 relay anycast
        || a >= 240) // reserved
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    let first = segments[0];
    // Ranges that carry an IPv4 address inside (which may be a private one) or reach
    // one through a translator: refused whole rather than decoded.
    let carries_ipv4 = segments[..6] == [0; 6] // IPv4-compatible ::a.b.c.d
        || (first == 0x0064 && segments[1] == 0xff9b) // NAT64 64:ff9b::/96, 64:ff9b:1::/48
        || first == 0x2002 // 6to4
        || (first == 0x2001 && segments[1] == 0); // Teredo
    !(carries_ipv4
        || address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && address.segments()[1] == 0x0db8) // documentation
}

fn is_public_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let internal = [
        "localhost",
        "local",
        "internal",
        "home.arpa",
        "lan",
        "intranet",
    ];
    name.contains('.')
        && !internal
            .iter()
            .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_endpoints_pass() {
        for fine in [
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://8.8.8.8/push",
            "https://[2606:4700::1111]/push",
        ] {
            assert!(checked_endpoint(fine, false).is_ok(), "{fine}");
        }
        for bad in [
            "http://push.example.com/x",
            "ftp://push.example.com/x",
            "https://user:pw@push.example.com/x",
            "HTTPS://push.example.com/x",
            "https://push.example.com/a b",
            "https://localhost/x",
            "https://push.localhost/x",
            "https://printer.local/x",
            "https://intranet/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::127.0.0.1]/x",
            "https://[64:ff9b::a00:5]/x",
            "https://[2002:a00:5::1]/x",
            "https://[2001:0:4136:e378::1]/x",
            "https://192.0.0.8/x",
            "https://0x7f.1/x",
            "https://2130706433/x",
            "not a url",
        ] {
            assert!(checked_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(checked_endpoint("http://127.0.0.1:8080/push", true).is_ok());
        assert!(checked_endpoint("ftp://127.0.0.1/push", true).is_err());
        let long = format!(
            "https://push.example.com/{}",
            "a".repeat(MAX_ENDPOINT_BYTES)
        );
        assert!(checked_endpoint(&long, false).is_err());
    }
}
