"""compare --gram at n = 32 and the width scan of its small entries (docs/multi_input.md,
"Theory against simulation: compare --gram").

1. tanh (C_b = 0, C_W = 1), Gaussian weights, depth 3, cos 0.5, n = 32, 3000 networks, seed 0:
   fwtheory.compare of predict(gram=G) with simulate(gram=G); prints how many of the
   (correlator, index tuple, layer) numbers agree within 4 SE + 5% and which miss.
2. cos 0.2, widths 32, 64, 128 (3000 networks each, seed 0): B_0101 at layer 3 per width,
   the width-extrapolated c0 against the theory, and the verdicts of every A and B entry at
   layer 3 on the extrapolated basis (3 SE + 5%).

Prints numbers; asserts nothing. Run: python validation/compare_gram_small_entries.py
"""

from fwtheory import Network, compare, predict, simulate


def main():
    net = Network("tanh", depth=3, width=32)
    G = [[1.0, 0.5], [0.5, 1.0]]
    c = compare(predict(net, gram=G), simulate(net, 3000, 0, gram=G), z=4.0, rel_tol=0.05)
    total = sum(s["agree"] + s["disagree"] for s in c.summary().values())
    fails = c.failures()
    print(f"1. cos 0.5, n = 32: {total - len(fails)} of {total} agree within 4 SE + 5%")
    for name, comp, layer in fails:
        j, i = c.components[name].index(comp), layer - 1
        print(f"   miss {name}_{''.join(map(str, comp))} layer {layer}: theory {c.theory[name][i, j]:.6g}, "
              f"measured {c.measured[name][i, j]:.6g} +- {c.errors[name][i, j]:.2g}, z = {c.zscores[name][i, j]:.2f}")
    G = [[1.0, 0.2], [0.2, 1.0]]
    c = compare(predict(net, gram=G), simulate(net, 3000, 0, gram=G, widths=[32, 64, 128]))
    j = c.components["B"].index((0, 1, 0, 1))
    print("2. cos 0.2, B_0101 at layer 3:")
    for pw in c.per_width:
        print(f"   n = {pw.widths[0]}: {pw.measured['B'][2, j]:.5f} +- {pw.errors['B'][2, j]:.5f} "
              f"(z = {pw.zscores['B'][2, j]:.2f}, {pw.verdicts['B'][2, j]})")
    print(f"   c0 = {c.measured['B'][2, j]:.5f} +- {c.errors['B'][2, j]:.5f}, theory {c.theory['B'][2, j]:.5f}, "
          f"z = {c.zscores['B'][2, j]:.2f}")
    ok = [v for n in ("A", "B") for v in c.verdicts[n][2]]
    print(f"   extrapolated basis, layer 3: {sum(v == 'agree' for v in ok)} of {len(ok)} A and B entries agree")


if __name__ == "__main__":
    main()
