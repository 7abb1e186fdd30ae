"""Refresh the pinned copies of MathJax and mermaid.js that the website serves (book/vendor/).

The site must not fetch anything when read, so the two libraries that Sphinx and
sphinxcontrib-mermaid take from a CDN by default are kept in the repository instead: only
the files a page loads, plus each package's licence. This script downloads the pinned
versions from the npm registry, checks each tarball against the registry's SHA-512
integrity, and rewrites book/vendor/<package>/. Change a version below and run it:

    python tools/vendor_book_js.py
"""

import base64
import hashlib
import io
import json
import shutil
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "book" / "vendor"
REGISTRY = "https://registry.npmjs.org"

# package -> (version, files kept: paths or folder prefixes inside the tarball's package/)
PACKAGES = {
    # tex-mml-chtml.js is Sphinx's default MathJax 3 component; it loads TeX extensions
    # (autoload) and the CHTML fonts on demand. The speech rule engine (es5/sre, 4 MB) that
    # the accessibility explorer in MathJax's menu loads when a reader turns it on is left out.
    "mathjax": (
        "3.2.2",
        [
            "LICENSE",
            "es5/tex-mml-chtml.js",
            "es5/input/tex/extensions/",
            "es5/output/chtml/fonts/woff-v2/",
        ],
    ),
    # The single-file build (2.7 MB) rather than the ES module build (13 MB of chunks);
    # book/vendor/mermaid-module.js turns it into the module sphinxcontrib-mermaid imports.
    # 11.12.1 is the version sphinxcontrib-mermaid 2.x loads from its CDN by default.
    "mermaid": ("11.12.1", ["LICENSE", "dist/mermaid.min.js"]),
}


def integrity_ok(data: bytes, integrity: str) -> bool:
    algorithm, _, digest = integrity.partition("-")
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == digest


def fetch(name: str, version: str) -> bytes:
    with urllib.request.urlopen(f"{REGISTRY}/{name}/{version}", timeout=60) as response:
        dist = json.load(response)["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=300) as response:
        data = response.read()
    if not integrity_ok(data, dist["integrity"]):
        raise SystemExit(f"{name}@{version}: tarball does not match the registry's integrity")
    return data


def unpack(name: str, version: str, keep: list[str], data: bytes) -> int:
    target = VENDOR / name
    shutil.rmtree(target, ignore_errors=True)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            path = member.name.removeprefix("package/")
            if not member.isfile() or not any(
                path == k or (k.endswith("/") and path.startswith(k)) for k in keep
            ):
                continue
            # Flatten the package's build folder (es5/, dist/) so URLs stay short.
            out = (
                target / path.split("/", 1)[1]
                if path.startswith(("es5/", "dist/"))
                else target / path
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
            count += 1
    return count


def main() -> None:
    versions = {}
    for name, (version, keep) in PACKAGES.items():
        count = unpack(name, version, keep, fetch(name, version))
        versions[name] = version
        print(f"{name}@{version}: {count} files -> {(VENDOR / name).relative_to(ROOT)}")
    (VENDOR / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")


if __name__ == "__main__":
    main()
