"""``fwtheory train``: train one network on a synthetic data set and record the NTK.

Importing this module is cheap (argparse only); the trainer loads in :func:`run`.
"""

from ._common import add_network_arguments, network_from_args

GFLOPS = 2e9        # conservative one-core rate of the matrix products (benchmarks/bench_train.py)


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train one network by gradient descent on synthetic data; loss and NTK change",
        description="Train one network (fwtheory.train.train) with squared loss "
                    "L = (1/2) sum_a (z(x_a) - y_a)^2 by full-batch gradient descent (or minibatch SGD with "
                    "--batch-size), theta <- theta - eta lambda dL/dtheta with the NTK learning-rate "
                    "tensor (lambda_b, lambda_W / n_{l-1}). Data: --inputs points on the sphere "
                    "|x|^2 = n0 q0 (q0 = --input-norm) and targets y = sin(u.x / sqrt(n0 q0)), u ~ N(0, I), "
                    "drawn from --data-seed. Prints, at the recorded steps, the loss, the relative NTK change "
                    "||Theta_t - Theta_0||_F / ||Theta_0||_F and the largest NTK eigenvalue (docs/training.md).")
    add_network_arguments(p, depth=3, width=64)
    p.add_argument("--inputs", type=int, default=16, help="training inputs m >= 1 (default: 16)")
    p.add_argument("--steps", type=int, default=100, help="gradient-descent steps (default: 100)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="eta > 0 (default: 1 / lambda_max(Theta_0) of the network's initial NTK)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: full batch)")
    p.add_argument("--records", type=int, default=10, help="number of recorded steps after 0 (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="initialization and batch seed (default: 0)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON (records, no arrays) instead of the table")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="also write the JSON, with outputs and NTKs, to FILE (atomically)")
    p.add_argument("--force", action="store_true", help="run even when the estimate exceeds 30 minutes")
    p.set_defaults(func=run)
    return p


def synthetic_data(m, n0, q0, seed):
    """m inputs with |x|^2 = n0 q0 and targets sin(u.x / sqrt(n0 q0)), u ~ N(0, I)."""
    import math

    import numpy as np

    from ..errors import ParameterError, check_int

    m = check_int("inputs", m, lower=1)
    if q0 <= 0:
        raise ParameterError("input_norm", "must be > 0 for the synthetic data (inputs on a sphere)")
    rng = np.random.default_rng(check_int("data_seed", seed, lower=0))
    X = rng.standard_normal((m, n0))
    X *= math.sqrt(n0 * q0) / np.linalg.norm(X, axis=1, keepdims=True)
    u = rng.standard_normal(n0)
    return X, np.sin(X @ u / math.sqrt(n0 * q0))[:, None]


def run(args):
    import sys

    import numpy as np

    from .._cost import announce
    from .._io import ProgressBar, atomic_write_text, check_output_file, dumps_json, format_table
    from ..errors import check_int
    from ..train import empirical_ntk, init_params, train

    net = network_from_args(args)
    steps = check_int("steps", args.steps, lower=0)
    records = check_int("records", args.records, lower=1)
    X, Y = synthetic_data(args.inputs, net.input_dim, args.input_norm, args.data_seed)
    if args.out is not None:
        check_output_file(args.out, "out")
    m, n, L = X.shape[0], net.width, net.depth
    flops = 6.0 * m * n * n * L * steps + 4.0 * (records + 1) * m * n * n * L + 2.0 * m * m * n * L * (records + 1)
    announce("train", flops / GFLOPS, [("steps", steps, 100), ("width", n, 64), ("depth", L, 3),
                                        ("inputs", m, 16)], force=args.force)
    eta = args.learning_rate
    params = None
    if eta is None:
        params = init_params(net, X.shape[1], 1, np.random.SeedSequence(args.seed).spawn(2)[0])
        eta = 1.0 / float(np.linalg.eigvalsh(empirical_ntk(net, params, X))[-1])
    rec = sorted({0, steps} | {int(round(k * steps / records)) for k in range(records + 1)})
    with ProgressBar(steps, label="train", delay=2.0) as bar:
        hist = train(net, X, Y, steps=steps, learning_rate=eta, batch_size=args.batch_size, seed=args.seed,
                     record_steps=rec, params=params, progress=bar)
    payload = hist.to_dict(arrays=False)
    payload["lambda_max"] = [float(np.linalg.eigvalsh(t)[-1]) for t in hist.ntk]
    payload["data"] = {"inputs": m, "input_norm": args.input_norm, "data_seed": args.data_seed,
                       "targets": "sin(u.x / sqrt(n0 q0)), u ~ N(0, I)"}
    if args.out is not None:
        atomic_write_text(args.out, dumps_json({**payload, **hist.to_dict(arrays=True)}) + "\n", "out")
    if args.json:
        sys.stdout.write(dumps_json(payload) + "\n")
    else:
        head = (f"# train: {net.activation.name}, {net.ensemble}, depth {L}, width {n}, {m} inputs, "
                f"eta={eta:.4g}, {'full batch' if args.batch_size is None else f'batch {args.batch_size}'}, "
                f"seed {args.seed}")
        rows = [[int(s), float(l), float(c), lm] for s, l, c, lm in
                zip(hist.steps, hist.loss, hist.ntk_change(), payload["lambda_max"])]
        sys.stdout.write(head + "\n" + format_table(["step", "loss", "NTK change", "lambda_max"], rows) + "\n")
    return 130 if hist.interrupted else 0
