"""The Debian package and the install set: packaging/build-deb.sh builds
ringkv_VERSION_ARCH.deb with every promised file, lintian finds no error,
the extracted unit verifies and stays hardened, the sysusers/tmpfiles
files create the user and the data directory in a scratch root, the man
pages are clean roff, the bash completion completes, the packaged config
runs a working single node, and `cmake --install` installs the same set.

Most checks extract the package (`dpkg -x`) into the test's directory.
One installs it for real with apt and purges it again: it runs as root
only (CI) and leaves a machine that already has ringkv installed alone.
The build takes about a minute."""

import gzip
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import Cluster, http_get

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.search(r"project\(ringkv VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)

# Every tool this file needs; packaging/deps.sh installs them (CI must not skip).
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian",
         "groff": "groff", "systemd-analyze": "systemd", "systemd-sysusers": "systemd",
         "systemd-tmpfiles": "systemd", "cmake": "cmake"}

# What the package must hold (paths in the .deb, man pages compressed).
PACKAGE_FILES = [
    "usr/bin/ringkvd",
    "usr/bin/kvctl",
    "etc/ringkv/ringkv.toml",
    "lib/systemd/system/ringkvd.service",
    "usr/lib/sysusers.d/ringkv.conf",
    "usr/lib/tmpfiles.d/ringkv.conf",
    "usr/share/man/man8/ringkvd.8.gz",
    "usr/share/man/man1/kvctl.1.gz",
    "usr/share/man/man5/ringkv.toml.5.gz",
    "usr/share/bash-completion/completions/kvctl",
    "usr/share/doc/ringkv/README.md.gz",
    "usr/share/doc/ringkv/CHANGELOG.md.gz",
    "usr/share/doc/ringkv/changelog.gz",
    "usr/share/doc/ringkv/copyright",
]
MAN_PAGES = ["usr/share/man/man8/ringkvd.8.gz", "usr/share/man/man1/kvctl.1.gz",
             "usr/share/man/man5/ringkv.toml.5.gz"]


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, **kw)


@pytest.fixture(scope="module")
def tools():
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail(f"missing Debian packages {' '.join(missing)}: run packaging/deps.sh", pytrace=False)


@pytest.fixture(scope="module")
def deb(tmp_path_factory, tools):
    """The built package, and its contents extracted beside it."""
    out = tmp_path_factory.mktemp("deb")
    t0 = time.monotonic()
    r = run(["bash", str(ROOT / "packaging" / "build-deb.sh"), str(out)], timeout=1200,
            env={**os.environ, "TMPDIR": str(out)})
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    print(f"\npackage build time: {took:.1f} s")
    arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
    assert path == out / f"ringkv_{VERSION}_{arch}.deb", path
    assert path.is_file()
    # build-deb.sh cleans its work directory up.
    assert not list(out.glob("ringkv-deb.*")), list(out.iterdir())
    root = out / "root"
    r = run(["dpkg-deb", "-x", str(path), str(root)])
    assert r.returncode == 0, r.stderr
    return path, root


def test_package_holds_every_file(deb):
    path, _ = deb
    r = run(["dpkg-deb", "-c", str(path)])
    assert r.returncode == 0, r.stderr
    listed = {line.split()[5].removeprefix("./") for line in r.stdout.splitlines()}
    missing = [f for f in PACKAGE_FILES if f not in listed]
    assert not missing, f"not in the package: {missing}\n{r.stdout}"
    assert run(["dpkg-deb", "-f", str(path), "Version"]).stdout.strip() == VERSION
    # The config is a conffile: an upgrade keeps the operator's edits.
    r = run(["dpkg-deb", "-I", str(path), "conffiles"])
    assert r.stdout.split() == ["/etc/ringkv/ringkv.toml"], r.stdout + r.stderr
    # The maintainer script creates the user before the unit is started.
    postinst = run(["dpkg-deb", "-I", str(path), "postinst"]).stdout
    assert postinst.index("adduser --system") < postinst.index("deb-systemd-invoke"), postinst


def test_lintian_reports_no_error(deb):
    path, _ = deb
    r = run(["lintian", "--no-tag-display-limit", str(path)], timeout=600)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert not errors, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


def unit_with_binary(root, tmp_path):
    """The packaged unit, its ExecStart pointing at the extracted binary
    (verify checks that the binary exists)."""
    text = (root / "lib/systemd/system/ringkvd.service").read_text()
    assert "ExecStart=/usr/bin/ringkvd run -c /etc/ringkv/ringkv.toml\n" in text
    unit = tmp_path / "ringkvd.service"
    unit.write_text(text.replace("ExecStart=/usr/bin/ringkvd ", f"ExecStart={root}/usr/bin/ringkvd "))
    return unit


def test_packaged_unit_verifies_and_stays_hardened(deb, tmp_path):
    _, root = deb
    unit = unit_with_binary(root, tmp_path)
    r = run(["systemd-analyze", "verify", "--man=no", str(unit)], cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not [l for l in out.splitlines() if "ringkvd" in l], out
    r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)], cwd=tmp_path)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"\nsystemd-analyze security exposure: {m.group(1)}")
    assert float(m.group(1)) <= 1.5, r.stdout


def test_user_and_data_dir_are_created_in_a_scratch_root(deb, tmp_path):
    """The packaged sysusers.d and tmpfiles.d files, applied to an empty
    root: the ringkv system user, and /var/lib/ringkv owned by it, 0750."""
    _, root = deb
    scratch = tmp_path / "root"
    (scratch / "etc").mkdir(parents=True)
    r = run(["systemd-sysusers", f"--root={scratch}", str(root / "usr/lib/sysusers.d/ringkv.conf")])
    assert r.returncode == 0, r.stdout + r.stderr
    passwd = [l.split(":") for l in (scratch / "etc/passwd").read_text().splitlines()]
    user = [p for p in passwd if p[0] == "ringkv"]
    assert user, passwd
    uid = int(user[0][2])
    assert uid < 1000 and user[0][5] == "/var/lib/ringkv", user
    r = run(["systemd-tmpfiles", f"--root={scratch}", "--create",
             str(root / "usr/lib/tmpfiles.d/ringkv.conf")])
    assert r.returncode == 0, r.stdout + r.stderr
    st = (scratch / "var/lib/ringkv").stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (uid, 0o750), (st.st_uid, oct(st.st_mode))


def test_man_pages_are_clean_roff(deb, tmp_path):
    _, root = deb
    for page in MAN_PAGES:
        src = tmp_path / Path(page).stem
        src.write_bytes(gzip.decompress((root / page).read_bytes()))
        r = run(["groff", "-ww", "-man", "-z", str(src)])
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (page, r.stdout + r.stderr)


def test_ringkv_toml_5_names_every_setting(deb):
    """The manual and the packaged file document the same keys."""
    _, root = deb
    page = gzip.decompress((root / "usr/share/man/man5/ringkv.toml.5.gz").read_bytes()).decode()
    text = (root / "etc/ringkv/ringkv.toml").read_text()
    section, keys = None, []
    for line in text.splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.match(r"^(\w+) =", line):
            keys.append((section, m.group(1)))
    # (test_config checks the file lists every key of the config table.)
    assert len(keys) > 40, keys
    for section, key in keys:
        part = page.split(f'.SS "[{section}]"', 1)
        assert len(part) == 2, f"no [{section}] in ringkv.toml(5)"
        body = part[1].split(".SS", 1)[0]
        assert re.search(rf"\b{key}\b", body), f"{section}.{key} is not in ringkv.toml(5)"


def complete(completion, words, kvctl="kvctl"):
    """COMPREPLY of the packaged completion for the command line `words`
    (the last word is the one being completed), in a fresh bash."""
    script = ('source "$1"; shift; complete -p kvctl >/dev/null || exit 9; '
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kvctl; printf "%s\\n" "${COMPREPLY[@]}"')
    r = run(["bash", "--norc", "-c", script, "bash", str(completion), kvctl, *words], timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completion_completes_commands_and_options(deb):
    _, root = deb
    comp = root / "usr/share/bash-completion/completions/kvctl"
    assert complete(comp, ["ge"]) == ["get"]
    assert complete(comp, ["--json", "re"]) == ["ready", "remove", "repair"]
    assert complete(comp, ["bench", "--w"]) == ["--workload"]
    assert complete(comp, ["bench", "--workload", ""]) == ["a", "b", "c", "w"]
    assert complete(comp, ["plan", ""]) == ["join", "leave", "remove"]
    assert "--no-wait" in complete(comp, ["leave", "--"])


def packaged_config_for(node, root):
    """The packaged config with only what a test machine needs changed: the
    data dir and the ports (the harness's free ones), HTTP off."""
    text = (root / "etc/ringkv/ringkv.toml").read_text()
    swaps = {'data_dir = "/var/lib/ringkv"': f'data_dir = "{node.data_dir}"',
             "tcp://127.0.0.1:7400": node.addr("client"),
             "tcp://127.0.0.1:7401": node.addr("peer"),
             "tcp://127.0.0.1:7402": node.addr("gossip"),
             'http = "127.0.0.1:7480"': 'http = ""'}
    for a, b in swaps.items():
        assert a in text, a
        text = text.replace(a, b)
    path = node.dir / "packaged.toml"
    path.write_text(text)
    return path


def test_packaged_config_runs_a_single_node(deb, tmp_path):
    """check-config accepts the packaged file as it is; a node run with it
    (ports and data dir moved) stores and reads keys alone, and the
    completion finds its node id through `kvctl members`."""
    _, root = deb
    ringkvd, kvctl = root / "usr/bin/ringkvd", root / "usr/bin/kvctl"
    r = run([str(ringkvd), "check-config", str(root / "etc/ringkv/ringkv.toml")])
    assert r.returncode == 0, r.stdout + r.stderr
    c = Cluster(tmp_path, ringkvd, kvctl)
    try:
        node = c.add_node(name="solo")
        conf = packaged_config_for(node, root)
        node.start(args=["run", "-c", str(conf)], write_config=False)
        r = node.kvctl("put", "greeting", "hello")
        assert r.rc == 0, r
        r = node.kvctl("get", "greeting")
        assert (r.rc, r.out) == (0, b"hello"), r
        r = node.kvctl("members")
        node_id = r.out.decode().splitlines()[1].split()[0].rstrip("*")
        comp = root / "usr/share/bash-completion/completions/kvctl"
        got = complete(comp, ["-a", node.client_addr, "remove", ""], kvctl=str(kvctl))
        assert got == [node_id], (got, r.out)
    finally:
        c.cleanup()


def normalise(rel):
    """A packaged path as the CMake install set names it (prefix-relative,
    uncompressed; Debian's /lib units and /etc stay where they are)."""
    rel = rel.removeprefix("usr/")
    return rel.removesuffix(".gz")


def test_cmake_install_installs_the_same_set(deb, binaries, tmp_path):
    _, root = deb
    build = Path(binaries["ringkvd"]).parents[1]
    assert (build / "CMakeCache.txt").is_file(), build
    prefix = tmp_path / "prefix"
    r = run(["cmake", "--install", str(build), "--prefix", str(prefix)])
    assert r.returncode == 0, r.stdout + r.stderr
    installed = {str(p.relative_to(prefix)) for p in prefix.rglob("*") if not p.is_dir()}
    packaged = {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}
    # Debian-only: its own changelog and copyright file.
    packaged -= {"usr/share/doc/ringkv/changelog.gz", "usr/share/doc/ringkv/copyright"}
    assert installed == {normalise(p) for p in packaged}
    # The unit names the binary and config where this install puts them.
    unit = (prefix / "lib/systemd/system/ringkvd.service").read_text()
    cache = (build / "CMakeCache.txt").read_text()
    where = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    etc = "/etc" if where == "/usr" else f"{where}/etc"
    assert f"ExecStart={where}/bin/ringkvd run -c {etc}/ringkv/ringkv.toml\n" in unit, unit


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and r.stdout.startswith("install ok")


def passwd_entry(user):
    r = run(["getent", "passwd", user])
    return r.stdout.strip().split(":") if r.returncode == 0 else None


def exec_start(unit_text):
    """The unit's ExecStart command as argv (no quoting in ours)."""
    m = re.search(r"^ExecStart=(.*)$", unit_text, re.M)
    assert m, unit_text
    return m.group(1).split()


def test_install_run_as_the_ringkv_user_and_purge(deb, tmp_path):
    """The package installed for real with apt (CI runs as root, on a
    machine of its own): the user and data directory exist, the installed
    unit verifies, its ExecStart run as `ringkv` against the packaged config
    serves put/get and /health, and a purge leaves nothing of the package
    but the system user (Debian keeps users)."""
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root (CI runs as root)")
    if installed("ringkv") or Path("/usr/bin/ringkvd").exists():
        pytest.skip("ringkv is installed on this machine already: left as it is")
    path, _ = deb
    user_before = passwd_entry("ringkv")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = None
    try:
        r = run(["apt-get", "install", "-y", "--no-install-recommends", str(path)], timeout=600,
                env=env)
        assert r.returncode == 0 and installed("ringkv"), r.stdout + r.stderr
        user = passwd_entry("ringkv")
        assert user and int(user[2]) < 1000 and user[5] == "/var/lib/ringkv", user
        assert user[6] in ("/usr/sbin/nologin", "/sbin/nologin"), user
        st = Path("/var/lib/ringkv").stat()
        assert (st.st_uid, st.st_mode & 0o7777) == (int(user[2]), 0o750), (st.st_uid, oct(st.st_mode))
        unit = Path("/lib/systemd/system/ringkvd.service")
        r = run(["systemd-analyze", "verify", "--man=no", str(unit)], cwd=tmp_path)
        assert r.returncode == 0 and "ringkvd" not in r.stdout + r.stderr, r.stdout + r.stderr

        argv = exec_start(unit.read_text())
        assert argv[0] == "/usr/bin/ringkvd", argv
        log = open(tmp_path / "ringkvd.log", "wb")
        proc = subprocess.Popen(["setpriv", "--reuid=ringkv", "--regid=ringkv", "--init-groups",
                                 *argv], stdout=log, stderr=subprocess.STDOUT, cwd="/")
        kvctl = ["/usr/bin/kvctl", "-a", "127.0.0.1:7400"]

        def healthy():
            assert proc.poll() is None, (tmp_path / "ringkvd.log").read_text()
            return run([*kvctl, "health"], timeout=10).returncode == 0
        deadline = time.monotonic() + 30
        while not healthy():
            assert time.monotonic() < deadline, (tmp_path / "ringkvd.log").read_text()
            time.sleep(0.1)
        r = run([*kvctl, "put", "greeting", "hello"])
        assert r.returncode == 0, r.stdout + r.stderr
        r = run([*kvctl, "get", "greeting"])
        assert (r.returncode, r.stdout) == (0, "hello"), r
        assert http_get(7480, "/health")[::2] == (200, "ok\n")
        # What the node wrote belongs to the user it ran as.
        owners = {p.stat().st_uid for p in Path("/var/lib/ringkv").rglob("*")}
        assert owners == {int(user[2])}, owners
        proc.terminate()
        assert proc.wait(timeout=30) == 0, (tmp_path / "ringkvd.log").read_text()
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if installed("ringkv"):
            r = run(["apt-get", "purge", "-y", "ringkv"], timeout=600, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
    left = [p for p in ("/usr/bin/ringkvd", "/usr/bin/kvctl", "/etc/ringkv", "/var/lib/ringkv",
                        "/lib/systemd/system/ringkvd.service", "/usr/share/doc/ringkv",
                        "/usr/share/man/man8/ringkvd.8.gz") if Path(p).exists()]
    assert not left, f"left after purge: {left}"
    assert not installed("ringkv")
    assert passwd_entry("ringkv"), "the system user is kept on purge"
    if user_before is None:  # this test made it: the machine is left as found
        run(["deluser", "--system", "ringkv"])
        run(["delgroup", "--system", "ringkv"])
