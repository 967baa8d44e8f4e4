"""Generate the committed gRPC stubs from protos/ (and check they are current).

One script so that CI and developers produce byte-identical stubs: the
directory under protos/ equals the proto package equals the Python import
path (trafficdl/rpc/v1). `--check` regenerates into a temporary folder and
fails if the committed files differ.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PKG = Path("trafficdl") / "rpc" / "v1"


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc  # test/dev dependency only

    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / OUT_PKG).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        stale = []
        for f in files:
            dest = ROOT / OUT_PKG / f.name
            if args.check:
                if not dest.exists() or not filecmp.cmp(f, dest, shallow=False):
                    stale.append(dest.relative_to(ROOT))
            else:
                shutil.copyfile(f, dest)
        if stale:
            print(f"stale gRPC stubs: {', '.join(map(str, stale))}; run `make protos`",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
