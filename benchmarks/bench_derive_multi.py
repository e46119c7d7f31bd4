"""Benchmark of the multi-input derivation (issue 12); prints timings, asserts nothing.

Cold derivation (in-memory caches empty, disk cache off) of the two-input recursions of
K, V, Theta, A, B, every component for m = 2 (all index-coincidence patterns), per
ensemble (target: under 60 s), then the same through the disk cache keyed by the
package version and the engine source (fwtheory/symbolic/_disk_cache.py).

Run: python benchmarks/bench_derive_multi.py   (each measurement in a fresh process)
"""

import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import time
t0 = time.perf_counter()
from fwtheory.symbolic import derive
for name in ("K", "V", "Theta", "A", "B"):
    rec = derive(name, "{ens}", inputs=2)
    for c in rec.components():
        rec.entry(*c)
print(time.perf_counter() - t0)
"""


def run(ens, cache):
    env = dict(os.environ, FWTHEORY_CACHE_DIR=cache, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD.format(ens=ens)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main():
    with tempfile.TemporaryDirectory() as cache:
        for ens in ("gaussian", "orthogonal"):
            cold = run(ens, "off")
            run(ens, cache)                      # fill the disk cache
            warm = run(ens, cache)
            print(f"derive K, V, Theta, A, B, m = 2, {ens:10s}: cold {cold:6.1f} s (target < 60 s), "
                  f"from the disk cache {warm:5.2f} s")


if __name__ == "__main__":
    main()
