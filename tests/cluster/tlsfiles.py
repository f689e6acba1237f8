"""Certificates for the TLS tests and the TLS benchmark, made with the
openssl command (packaging/deps.sh installs it): CAs, node certificates
signed by a CA (with IP SANs, though ringkv verifies by CA only), and
broken ones (expired, a key of another certificate)."""

import subprocess
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return r


class CA:
    """A self-signed CA in directory d, able to sign certificates (openssl
    ca: it can set any validity period, past ones included). start/end
    ("YYYYMMDDHHMMSSZ") set the CA's own validity; default: 30 days from
    now."""

    def __init__(self, d, name, start=None, end=None):
        self.dir = Path(d) / name
        (self.dir / "new").mkdir(parents=True, exist_ok=True)
        self.crt, self.key = self.dir / "ca.crt", self.dir / "ca.key"
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        self.cnf = self.dir / "ca.cnf"
        self.cnf.write_text(
            "[ca]\ndefault_ca = ca_default\n"
            "[ca_default]\n"
            f"database = {self.dir}/index.txt\nnew_certs_dir = {self.dir}/new\n"
            f"serial = {self.dir}/serial\ndefault_md = sha256\npolicy = policy_any\n"
            "unique_subject = no\n"
            "[policy_any]\ncommonName = supplied\n"
            "[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign\n")
        if start is None:
            _openssl("req", "-x509", "-new", *EC, "-keyout", self.key, "-out", self.crt, "-days",
                     30, "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            return
        csr = self.dir / "ca.csr"
        _openssl("req", "-new", *EC, "-keyout", self.key, "-out", csr, "-subj", f"/CN={name}")
        _openssl("ca", "-batch", "-notext", "-selfsign", "-config", self.cnf, "-keyfile", self.key,
                 "-in", csr, "-out", self.crt, "-extensions", "ca_ext", "-extfile", self.cnf,
                 "-startdate", start, "-enddate", end)

    def sign(self, name, ips=("127.0.0.1",), days=30, start=None, end=None):
        """A certificate for name (CN) with IP SANs ips, and its key:
        (crt path, key path). start/end ("YYYYMMDDHHMMSSZ") replace days."""
        crt, key, csr = (self.dir / f"{name}.{x}" for x in ("crt", "key", "csr"))
        ext = self.dir / f"{name}.ext"
        sans = ",".join(f"IP:{ip}" for ip in ips)
        ext.write_text("[ext]\nbasicConstraints = CA:FALSE\n"
                       "keyUsage = critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage = serverAuth,clientAuth\n"
                       + (f"subjectAltName = {sans}\n" if sans else ""))
        _openssl("req", "-new", *EC, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        when = ["-startdate", start, "-enddate", end] if start else ["-days", days]
        _openssl("ca", "-batch", "-notext", "-config", self.cnf, "-cert", self.crt, "-keyfile",
                 self.key, "-in", csr, "-out", crt, "-extfile", ext, "-extensions", "ext", *when)
        return crt, key


def node_overrides(ca, crt, key):
    """Config overrides that turn TLS on with these files."""
    return {"security.tls_cert": str(crt), "security.tls_key": str(key),
            "security.tls_ca": str(ca.crt)}


def kvctl_args(ca, crt=None, key=None):
    """kvctl options for TLS with ca (and a client certificate)."""
    return ["--tls-ca", str(ca.crt)] + (["--tls-cert", str(crt), "--tls-key", str(key)]
                                        if crt else [])
