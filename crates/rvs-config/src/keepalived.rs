//! The LVS half of keepalived.conf: `virtual_server` blocks with their
//! `real_server`s and `TCP_CHECK` / `HTTP_GET` / `SSL_GET` / `MISC_CHECK`
//! checkers, with both keyword spellings (`lb_algo`/`lvs_sched`,
//! `lb_kind`/`lvs_method`, `nb_get_retry`/`retry`).
//!
//! Semantics follow keepalived.conf(5): the default forwarding method is
//! NAT (ipvsadm's is DR), weight 1, quorum 1, hysteresis 0, and check
//! timing inherits virtual server -> real server -> checker. Everything rvs
//! does not act on is reported as a [`Notice`] naming the keyword and its
//! line; `vrrp_*` blocks get one notice between them (failover is not part
//! of this reader). Malformed values are errors naming the line.

use crate::common::{self, ConfigError, Notice, TimingOverrides};
use crate::model::{CheckDef, Config, RealDef, ServiceDef};
use crate::toml_file::{netmask, sched_flag};
use rvs_core::{
    DestConfig, Family, FwdMethod, Protocol, ServiceConfig, ServiceKey, DEFAULT_PERSISTENT_TIMEOUT,
};
use rvs_health::{CheckKind, HttpProbe, MiscProbe, ProbeSpec, TcpProbe};
use std::net::{IpAddr, SocketAddr};

/// One statement: a keyword, its arguments, and a block if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Node>>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
    /// `{` or `}` (not inside quotes).
    brace: bool,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = i + 1;
        let mut chars = raw_line.chars().peekable();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut Vec<Token>| {
            if !word.is_empty() {
                out.push(Token {
                    text: std::mem::take(word),
                    line,
                    brace: false,
                });
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' if word.is_empty() => break,
                '"' => {
                    let mut quoted = String::new();
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == '"' {
                            closed = true;
                            break;
                        }
                        quoted.push(q);
                    }
                    if !closed {
                        return Err(ConfigError::new(line, "unterminated quoted string"));
                    }
                    word.push_str(&quoted);
                    if word.is_empty() {
                        out.push(Token {
                            text: String::new(),
                            line,
                            brace: false,
                        });
                    }
                }
                '{' | '}' => {
                    flush(&mut word, &mut out);
                    out.push(Token {
                        text: c.to_string(),
                        line,
                        brace: true,
                    });
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    Ok(out)
}

/// Parse the statement tree (no interpretation).
pub fn parse_tree(text: &str) -> Result<Vec<Node>, ConfigError> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let nodes = parse_block(&tokens, &mut pos, None)?;
    Ok(nodes)
}

fn parse_block(
    tokens: &[Token],
    pos: &mut usize,
    open_line: Option<usize>,
) -> Result<Vec<Node>, ConfigError> {
    let mut nodes = Vec::new();
    while let Some(t) = tokens.get(*pos) {
        *pos += 1;
        if t.brace && t.text == "}" {
            return match open_line {
                Some(_) => Ok(nodes),
                None => Err(ConfigError::new(t.line, "`}' without a matching `{'")),
            };
        }
        if t.brace {
            return Err(ConfigError::new(t.line, "`{' without a keyword before it"));
        }
        let mut node = Node {
            key: t.text.clone(),
            args: Vec::new(),
            block: None,
            line: t.line,
        };
        while let Some(a) = tokens.get(*pos) {
            if a.brace || a.line != t.line {
                break;
            }
            node.args.push(a.text.clone());
            *pos += 1;
        }
        if let Some(b) = tokens.get(*pos) {
            if b.brace && b.text == "{" {
                *pos += 1;
                node.block = Some(parse_block(tokens, pos, Some(b.line))?);
            }
        }
        nodes.push(node);
    }
    match open_line {
        Some(line) => Err(ConfigError::new(line, "block opened here is never closed")),
        None => Ok(nodes),
    }
}

/// One `url` block: path, status ranges, digest, virtual host.
type Url = (String, Vec<(u16, u16)>, Option<String>, Option<String>);

struct Reader {
    notices: Vec<Notice>,
}

impl Reader {
    fn unsupported(&mut self, node: &Node, context: &str) {
        self.notices.push(Notice {
            line: node.line,
            message: format!(
                "`{}' in {context} is not supported by rvs; ignored",
                node.key
            ),
        });
    }
}

fn arg(node: &Node, i: usize) -> Result<&str, ConfigError> {
    node.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| ConfigError::new(node.line, format!("`{}' needs a value", node.key)))
}

fn num<T: std::str::FromStr>(node: &Node, i: usize) -> Result<T, ConfigError> {
    let text = arg(node, i)?;
    text.parse()
        .map_err(|_| ConfigError::new(node.line, format!("`{}': bad number `{text}'", node.key)))
}

fn secs(node: &Node) -> Result<std::time::Duration, ConfigError> {
    let v: f64 = num(node, 0)?;
    common::seconds(v).map_err(|e| ConfigError::new(node.line, format!("`{}': {e}", node.key)))
}

fn ip(node: &Node, i: usize) -> Result<IpAddr, ConfigError> {
    let text = arg(node, i)?;
    text.parse()
        .map_err(|_| ConfigError::new(node.line, format!("`{}': bad address `{text}'", node.key)))
}

fn method_arg(node: &Node) -> Result<FwdMethod, ConfigError> {
    let m = arg(node, 0)?;
    if node.args.len() > 1 {
        return Err(ConfigError::new(
            node.line,
            format!(
                "`{}': tunnel options ({}) are not supported",
                node.key,
                node.args[1..].join(" ")
            ),
        ));
    }
    common::method(m).map_err(|e| ConfigError::new(node.line, e))
}

/// Try a timing keyword; `Ok(false)` if `node` is not one.
fn timing_key(node: &Node, t: &mut TimingOverrides) -> Result<bool, ConfigError> {
    match node.key.as_str() {
        "delay_loop" => t.delay_loop = Some(secs(node)?),
        "connect_timeout" => t.connect_timeout = Some(secs(node)?),
        "retry" | "nb_get_retry" | "nb_sock_retry" => t.retry = Some(num(node, 0)?),
        "delay_before_retry" => t.delay_before_retry = Some(secs(node)?),
        "rise" => t.rise = Some(num(node, 0)?),
        "fall" => t.fall = Some(num(node, 0)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parse a keepalived.conf; returns the configuration and the notices.
pub fn parse(text: &str) -> Result<(Config, Vec<Notice>), ConfigError> {
    let tree = parse_tree(text)?;
    let mut reader = Reader {
        notices: Vec::new(),
    };
    let mut config = Config::default();
    let mut vrrp: Vec<String> = Vec::new();
    let mut vrrp_line = 0;
    for node in &tree {
        match node.key.as_str() {
            "virtual_server" => {
                if let Some(def) = reader.virtual_server(node)? {
                    if let Some(prev) = config.services.iter().find(|p| p.key() == def.key()) {
                        return Err(ConfigError::new(
                            node.line,
                            format!(
                                "virtual_server declared twice (first at line {})",
                                prev.line
                            ),
                        ));
                    }
                    config.services.push(def);
                }
            }
            k if k.starts_with("vrrp_") => {
                if vrrp.is_empty() {
                    vrrp_line = node.line;
                }
                vrrp.push(
                    format!("{} {}", node.key, node.args.join(" "))
                        .trim()
                        .to_string(),
                );
            }
            "global_defs" => {
                for child in node.block.iter().flatten() {
                    reader.unsupported(child, "global_defs");
                }
            }
            _ => reader.unsupported(node, "the top level"),
        }
    }
    if !vrrp.is_empty() {
        reader.notices.push(Notice {
            line: vrrp_line,
            message: format!(
                "VRRP is not supported by rvs (director failover is a later feature); ignored {} block(s): {}",
                vrrp.len(),
                vrrp.join(", ")
            ),
        });
    }
    reader.notices.sort_by_key(|n| n.line);
    Ok((config, reader.notices))
}

impl Reader {
    fn virtual_server(&mut self, node: &Node) -> Result<Option<ServiceDef>, ConfigError> {
        let Some(block) = &node.block else {
            return Err(ConfigError::new(
                node.line,
                "virtual_server needs a { } block",
            ));
        };
        // Protocol first: the key needs it.
        let mut protocol = Protocol::Tcp;
        for child in block.iter().filter(|c| c.key == "protocol") {
            protocol = match arg(child, 0)?.to_ascii_uppercase().as_str() {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                p => {
                    return Err(ConfigError::new(
                        child.line,
                        format!("unknown protocol `{p}'"),
                    ))
                }
            };
        }
        let key = match arg(node, 0)? {
            "group" => {
                self.notices.push(Notice {
                    line: node.line,
                    message: "`virtual_server group' is not supported by rvs; this virtual server is ignored".into(),
                });
                return Ok(None);
            }
            "fwmark" => {
                let mark: u32 = num(node, 1)?;
                let family = block
                    .iter()
                    .find(|c| c.key == "ip_family")
                    .map(|c| arg(c, 0).map(|f| if f == "inet6" { Family::V6 } else { Family::V4 }))
                    .transpose()?
                    .unwrap_or(Family::V4);
                ServiceKey::Fwmark { mark, family }
            }
            _ => ServiceKey::Addr {
                protocol,
                addr: ip(node, 0)?,
                port: num(node, 1)?,
            },
        };
        let mut service = ServiceConfig::new(key);
        let mut def = ServiceDef {
            service: ServiceConfig::new(key),
            quorum: 1,
            hysteresis: 0,
            sorry: None,
            sorry_inhibit: false,
            alpha: false,
            reals: Vec::new(),
            line: node.line,
            drain: None,
        };
        let mut method = FwdMethod::Masq;
        let mut sorry_method: Option<FwdMethod> = None;
        let mut sorry_addr: Option<(IpAddr, u16)> = None;
        let mut timing = TimingOverrides::default();
        let mut inhibit = false;
        let mut virtualhost: Option<String> = None;
        // Settings first, real servers after (they inherit).
        for c in block {
            if timing_key(c, &mut timing)? {
                continue;
            }
            match c.key.as_str() {
                "lb_algo" | "lvs_sched" => {
                    service.scheduler =
                        common::scheduler(arg(c, 0)?).map_err(|e| ConfigError::new(c.line, e))?;
                }
                "lb_kind" | "lvs_method" => method = method_arg(c)?,
                "persistence_timeout" => {
                    service.persistent = Some(match c.args.first() {
                        Some(_) => num(c, 0)?,
                        None => DEFAULT_PERSISTENT_TIMEOUT,
                    });
                }
                "persistence_granularity" => {
                    service.netmask = netmask(arg(c, 0)?, key.family())
                        .map_err(|e| ConfigError::new(c.line, e))?;
                }
                "persistence_engine" => service.pe = Some(arg(c, 0)?.to_string()),
                "ops" => service.ops = true,
                "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
                | "mh-fallback" => {
                    service.flags.0 |=
                        sched_flag(&c.key).map_err(|e| ConfigError::new(c.line, e))?;
                }
                "protocol" | "ip_family" | "real_server" => {}
                "quorum" => def.quorum = num(c, 0)?,
                "hysteresis" => def.hysteresis = num(c, 0)?,
                "alpha" => def.alpha = true,
                "inhibit_on_failure" => inhibit = true,
                "sorry_server" => sorry_addr = Some((ip(c, 0)?, num(c, 1)?)),
                "sorry_server_inhibit" => def.sorry_inhibit = true,
                "sorry_server_lvs_method" => sorry_method = Some(method_arg(c)?),
                "virtualhost" => virtualhost = Some(arg(c, 0)?.to_string()),
                _ => self.unsupported(c, "virtual_server"),
            }
        }
        if service.persistent == Some(0) {
            service.persistent = None;
        }
        def.service = service;
        if let Some((addr, port)) = sorry_addr {
            let mut d = DestConfig::new(addr, port);
            d.fwd = sorry_method.unwrap_or(method);
            def.sorry = Some(d);
        }
        for c in block.iter().filter(|c| c.key == "real_server") {
            let real = self.real_server(c, method, inhibit, timing, virtualhost.as_deref())?;
            if def
                .reals
                .iter()
                .any(|p| p.dest.addr == real.dest.addr && p.dest.port == real.dest.port)
            {
                return Err(ConfigError::new(
                    c.line,
                    "real_server declared twice in this virtual_server",
                ));
            }
            def.reals.push(real);
        }
        Ok(Some(def))
    }

    fn real_server(
        &mut self,
        node: &Node,
        method: FwdMethod,
        inhibit: bool,
        outer: TimingOverrides,
        virtualhost: Option<&str>,
    ) -> Result<RealDef, ConfigError> {
        let addr = ip(node, 0)?;
        let port: u16 = match node.args.get(1) {
            Some(_) => num(node, 1)?,
            None => 0,
        };
        let mut dest = DestConfig::new(addr, port);
        dest.fwd = method;
        let mut real = RealDef {
            dest,
            inhibit_on_failure: inhibit,
            notify_up: None,
            notify_down: None,
            checks: Vec::new(),
        };
        let mut timing = TimingOverrides::default();
        let block = node.block.as_deref().unwrap_or_default();
        for c in block {
            if timing_key(c, &mut timing)? {
                continue;
            }
            match c.key.as_str() {
                "weight" => {
                    real.dest.weight = num(c, 0)?;
                    if real.dest.weight < 0 {
                        return Err(ConfigError::new(c.line, "weight must not be negative"));
                    }
                }
                "lb_kind" | "lvs_method" => real.dest.fwd = method_arg(c)?,
                "uthreshold" => real.dest.u_threshold = num(c, 0)?,
                "lthreshold" => real.dest.l_threshold = num(c, 0)?,
                "inhibit_on_failure" => real.inhibit_on_failure = true,
                "notify_up" => real.notify_up = Some(c.args.join(" ")),
                "notify_down" => real.notify_down = Some(c.args.join(" ")),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => {}
                _ => self.unsupported(c, "real_server"),
            }
        }
        let timing = timing.over(outer);
        for c in block {
            match c.key.as_str() {
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => {
                    let server = SocketAddr::new(addr, port);
                    real.checks
                        .extend(self.checker(c, server, timing, virtualhost)?);
                }
                _ => {}
            }
        }
        Ok(real)
    }

    fn checker(
        &mut self,
        node: &Node,
        server: SocketAddr,
        outer: TimingOverrides,
        virtualhost: Option<&str>,
    ) -> Result<Vec<CheckDef>, ConfigError> {
        let block = node.block.as_deref().unwrap_or_default();
        let mut timing = TimingOverrides::default();
        let mut connect_ip = server.ip();
        let mut connect_port = server.port();
        let mut http11 = false;
        let mut urls: Vec<Url> = Vec::new();
        let mut misc_path: Option<String> = None;
        let mut misc_timeout: Option<std::time::Duration> = None;
        let mut misc_dynamic = false;
        let mut checker_vhost: Option<String> = None;
        let mut enable_sni = false;
        let context = node.key.clone();
        for c in block {
            if timing_key(c, &mut timing)? {
                continue;
            }
            match (node.key.as_str(), c.key.as_str()) {
                (_, "connect_ip") => connect_ip = ip(c, 0)?,
                (_, "connect_port") => connect_port = num(c, 0)?,
                ("HTTP_GET" | "SSL_GET", "http_protocol") => {
                    http11 = match arg(c, 0)? {
                        "1.1" => true,
                        "1.0" | "1.0C" => false,
                        v => {
                            return Err(ConfigError::new(
                                c.line,
                                format!("unknown http_protocol `{v}'"),
                            ))
                        }
                    };
                }
                ("HTTP_GET" | "SSL_GET", "virtualhost") => {
                    checker_vhost = Some(arg(c, 0)?.to_string())
                }
                ("HTTP_GET" | "SSL_GET", "url") => urls.push(self.url(c)?),
                ("SSL_GET", "enable_sni") => enable_sni = true,
                ("MISC_CHECK", "misc_path") => misc_path = Some(c.args.join(" ")),
                ("MISC_CHECK", "misc_timeout") => misc_timeout = Some(secs(c)?),
                ("MISC_CHECK", "misc_dynamic") => misc_dynamic = true,
                _ => self.unsupported(c, &context),
            }
        }
        let timing = timing.over(outer);
        let target = SocketAddr::new(connect_ip, connect_port);
        let out = match node.key.as_str() {
            "TCP_CHECK" => vec![CheckDef {
                timing: timing.resolve(CheckKind::Tcp),
                probe: ProbeSpec::Tcp(TcpProbe { target }),
            }],
            "MISC_CHECK" => {
                let Some(command) = misc_path else {
                    return Err(ConfigError::new(node.line, "MISC_CHECK needs misc_path"));
                };
                let mut t = timing.resolve(CheckKind::Misc);
                // keepalived bounds the script by misc_timeout, by
                // delay_loop when unset.
                t.connect_timeout = misc_timeout.unwrap_or(t.delay_loop);
                vec![CheckDef {
                    timing: t,
                    probe: ProbeSpec::Misc(MiscProbe {
                        command,
                        dynamic: misc_dynamic,
                    }),
                }]
            }
            _ => {
                let tls = node.key == "SSL_GET";
                let kind = if tls {
                    CheckKind::Https
                } else {
                    CheckKind::Http
                };
                if urls.is_empty() {
                    self.notices.push(Notice {
                        line: node.line,
                        message: format!("{} without a url block checks `/'", node.key),
                    });
                    urls.push(("/".into(), Vec::new(), None, None));
                }
                urls.into_iter()
                    .map(|(path, status_codes, digest, vhost)| {
                        let vhost = vhost
                            .or(checker_vhost.clone())
                            .or(virtualhost.map(str::to_string));
                        CheckDef {
                            timing: timing.resolve(kind),
                            probe: ProbeSpec::Http(HttpProbe {
                                target,
                                tls,
                                path,
                                // keepalived's enable_sni sends the
                                // virtualhost as the SNI name.
                                sni: if enable_sni { vhost.clone() } else { None },
                                ca_file: None,
                                virtualhost: vhost,
                                status_codes,
                                digest,
                                http11,
                            }),
                        }
                    })
                    .collect()
            }
        };
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn url(
        &mut self,
        node: &Node,
    ) -> Result<(String, Vec<(u16, u16)>, Option<String>, Option<String>), ConfigError> {
        let mut path = None;
        let mut codes = Vec::new();
        let mut digest = None;
        let mut vhost = None;
        for c in node.block.as_deref().unwrap_or_default() {
            match c.key.as_str() {
                "path" => path = Some(arg(c, 0)?.to_string()),
                "digest" => {
                    let d = arg(c, 0)?;
                    if d.len() != 32 || !d.chars().all(|x| x.is_ascii_hexdigit()) {
                        return Err(ConfigError::new(
                            c.line,
                            format!("digest `{d}' is not 32 hex digits"),
                        ));
                    }
                    digest = Some(d.to_ascii_lowercase());
                }
                "status_code" => {
                    if c.args.is_empty() {
                        return Err(ConfigError::new(c.line, "`status_code' needs a value"));
                    }
                    for a in &c.args {
                        codes.push(
                            common::status_range(a).map_err(|e| ConfigError::new(c.line, e))?,
                        );
                    }
                }
                "virtualhost" => vhost = Some(arg(c, 0)?.to_string()),
                _ => self.unsupported(c, "url"),
            }
        }
        let Some(path) = path else {
            return Err(ConfigError::new(node.line, "url needs a path"));
        };
        Ok((path, codes, digest, vhost))
    }
}
