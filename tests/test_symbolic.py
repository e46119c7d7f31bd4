"""The derived recursions against hand-typed literature forms (oracles live here only).

References: PDLT (arXiv:2106.10165) Sec. 4.3 (V), 4.5 (G1), Ch. 8 (Theta, Theta1, D, F, A, B),
single-input forms derived by hand independently of the engine (Gaussian weights; orthogonal
weights via the degree-4 Weingarten function, see docs/references.md); Collins and Sniady,
CMP 264 (2006) 773, and the haarpy test table (Weingarten). Where a hand form has
<sigma'^2 + sigma sigma''>,
the engine writes the equal <z sigma sigma'>/K (Gaussian integration by parts).
"""

import pytest
import sympy

from fwtheory.errors import ParameterError
from fwtheory.symbolic import (CORRELATOR_SYMBOLS as S, C_W, C_b, lambda_W, lambda_b, q0, derive,
                               dependency_graph, moment, pair_partitions, weingarten_table)
from fwtheory.symbolic.derivation import expectation
from fwtheory.symbolic.ensembles import n

K, G1, V, Th, Th1, D, F, A, B = (S[k] for k in ("K", "G1", "V", "Theta", "Theta1", "D", "F", "A", "B"))

s2, s4 = moment(s=2), moment(s=4)
t2, t4 = moment(t=2), moment(t=4)
s2t2 = moment(s=2, t=2)
chi_par = C_W * moment(s=2, dk=1)          # C_W d<sigma^2>/dK           (PDLT Sec. 5.1)
chi_perp = C_W * t2                         # C_W <sigma'^2>              (PDLT Sec. 5.1)
dchi_perp = C_W * moment(t=2, dk=1)         # d chi_perp / dK
d2chi_perp = C_W * moment(t=2, dk=2)
dOmega = lambda_W / C_W * chi_par + Th * dchi_perp   # d<Omega>/dK, Omega = lambda_W s^2 + C_W Theta t^2
sigma_prime_sq_plus = moment(s=1, t=1, z=1) / K      # <sigma'^2 + sigma sigma''> by parts

GAUSSIAN = {
    "K": C_b + C_W * s2,
    "Theta": lambda_b + lambda_W * s2 + chi_perp * Th,
    "V": C_W**2 * (s4 - s2**2) + chi_par**2 * V,
    "G1": chi_par * G1 + C_W / 2 * V * moment(s=2, dk=2),
    "Theta1": (chi_perp * Th1 + lambda_W / C_W * chi_par * G1 + lambda_W / 2 * V * moment(s=2, dk=2)
               + Th * (G1 * dchi_perp + V / 2 * d2chi_perp) + (D + 2 * F) * dchi_perp),
    "F": C_W**2 * s2t2 * Th + C_W**2 * sigma_prime_sq_plus**2 * F,
    "B": C_W**2 * t4 * Th**2 + chi_perp**2 * B,
    "D": (lambda_W * C_W * (s4 - s2**2) + C_W**2 * Th * (s2t2 - s2 * t2)
          + chi_par * chi_perp * D + chi_par * V * dOmega),
    "A": (lambda_W**2 * (s4 - s2**2) + 2 * lambda_W * C_W * Th * (s2t2 - s2 * t2)
          + C_W**2 * Th**2 * (t4 - t2**2) + chi_perp**2 * A + V * dOmega**2
          + 2 * chi_perp * D * dOmega),
}
ORTHOGONAL = dict(GAUSSIAN)
ORTHOGONAL.update({
    "V": C_W**2 * (s4 - 3 * s2**2) + chi_par**2 * V,
    "F": C_W**2 * (s2t2 - s2 * t2) * Th + C_W**2 * sigma_prime_sq_plus**2 * F,
    "B": C_W**2 * (t4 - t2**2) * Th**2 + chi_perp**2 * B,
})


@pytest.mark.parametrize("ensemble, table", [("gaussian", GAUSSIAN), ("orthogonal", ORTHOGONAL)])
@pytest.mark.parametrize("name", ["K", "Theta", "V", "G1", "Theta1", "D", "F", "A", "B"])
def test_derived_equals_reference(name, ensemble, table):
    derived = derive(name, ensemble).expr
    assert sympy.simplify(sympy.expand(derived - table[name])) == 0


def test_first_layer_values():
    # Gaussian first layer: exactly Gaussian, deterministic NTK (PDLT eq. (4.8))
    for name in ("G1", "V", "Theta1", "D", "F", "A", "B"):
        assert derive(name).initial["gaussian"] == 0
    assert sympy.simplify(derive("K").initial["gaussian"] - (C_b + C_W * q0)) == 0
    assert sympy.simplify(derive("Theta").initial["gaussian"] - (lambda_b + lambda_W * q0)) == 0
    # orthogonal first layer: z on a sphere, V^(1) = -2 (C_W q0)^2 n/(n+2) exactly (docs/references.md item 6)
    rec = derive("V", "orthogonal")
    assert sympy.simplify(rec.initial_exact["orthogonal"] + 2 * (C_W * q0) ** 2 * n / (n + 2)) == 0
    assert sympy.simplify(rec.initial["orthogonal"] + 2 * (C_W * q0) ** 2) == 0


def _linear_moments(expr, K_value):
    """Substitute the Gaussian moments of sigma(z) = z: <z^m>_K = (m-1)!! K^(m/2)."""
    kk = sympy.Symbol("kk", positive=True)
    subs = {}
    for m in expr.atoms(type(moment(s=1))):
        a, b, c, e, d = m.powers
        if c or e:
            val = sympy.Integer(0)
        else:
            p = a + d
            val = sympy.Integer(0) if p % 2 else sympy.factorial2(p - 1) * kk ** sympy.Rational(p, 2)
        subs[m] = sympy.diff(val, kk, m.dk).subs(kk, K_value)
    return expr.xreplace(subs)


def test_linear_gaussian_reproduces_exact_deep_linear_expansion():
    # PDLT eq. (3.25): E[z^4] = 3 K^2 (1 + 2/n)^(l-1) exactly; to O(1/n): 3K^2 (1 + 2(l-1)/n),
    # and E[z^4] - 3 E[z^2]^2 = 3V/n with E[z^2] = K exactly.
    cw, q = sympy.Rational(3, 2), sympy.Rational(7, 5)
    rec = derive("V").expr.subs({C_W: cw, C_b: 0})
    g1 = derive("G1").expr.subs({C_W: cw, C_b: 0})
    Kl, Vl, G1l = cw * q, sympy.Integer(0), sympy.Integer(0)
    eps = sympy.Symbol("eps")
    for layer in range(1, 7):
        exact = 3 * Kl**2 * (1 + 2 * eps) ** (layer - 1)
        first_order = sympy.series(exact, eps, 0, 2).removeO()
        assert sympy.simplify(3 * (Kl**2 + Vl * eps) - first_order) == 0
        assert G1l == 0
        Vl, G1l = (_linear_moments(rec, Kl).subs(V, Vl),
                   _linear_moments(g1, Kl).subs({V: Vl, G1: G1l}))
        Kl = cw * Kl


def test_linear_orthogonal_V_is_minus_two_K_squared():
    cw = sympy.Rational(5, 4)
    rec = derive("V", "orthogonal").expr.subs({C_W: cw, C_b: 0})
    Kl = cw * q0
    Vl = derive("V", "orthogonal").initial["orthogonal"].subs(C_W, cw)
    for _ in range(6):
        assert sympy.simplify(Vl + 2 * Kl**2) == 0
        Vl = _linear_moments(rec, Kl).subs(V, Vl)
        Kl = cw * Kl


def test_weingarten_values():
    # Collins and Sniady, CMP 264 (2006) 773; haarpy test table (docs/references.md item 2)
    w2 = weingarten_table(2)
    assert sympy.simplify(w2[(1, 1)] - (n + 1) / (n * (n - 1) * (n + 2))) == 0
    assert sympy.simplify(w2[(2,)] + 1 / (n * (n - 1) * (n + 2))) == 0
    w3 = weingarten_table(3)
    assert w3[(1, 1, 1)].subs(n, 7) == sympy.Rational(68, 20790)
    assert w3[(2, 1)].subs(n, 7) == sympy.Rational(-1, 2310)
    assert w3[(3,)].subs(n, 7) == sympy.Rational(2, 20790)
    w4 = weingarten_table(4)
    den = n * (n - 1) * (n - 2) * (n - 3) * (n + 1) * (n + 2) * (n + 4) * (n + 6)
    assert sympy.simplify(w4[(1, 1, 1, 1)] - (n + 3) * (n**2 + 6 * n + 1) / (
        n * (n - 1) * (n - 3) * (n + 1) * (n + 2) * (n + 4) * (n + 6))) == 0
    assert sympy.simplify(w4[(2, 1, 1)] + (n**3 + 6 * n**2 + 3 * n - 6) / den) == 0
    assert sympy.simplify(w4[(2, 2)] - (n**2 + 5 * n + 18) / den) == 0
    assert sympy.simplify(w4[(3, 1)] - 2 / ((n - 1) * (n - 2) * (n - 3) * (n + 1) * (n + 2) * (n + 6))) == 0
    assert sympy.simplify(w4[(4,)] + (5 * n + 6) / den) == 0


def test_haar_entry_moments_from_pairings():
    from fwtheory.symbolic.ensembles import OrthogonalEnsemble

    def moment_of(rows, cols):
        total = 0
        for coeff, p, q in OrthogonalEnsemble().pairings(rows, n, 1):
            if all(cols[a] == cols[b] for a, b in q):
                total += coeff
        return sympy.factor(total)

    assert sympy.simplify(moment_of((1, 1, 1, 1), (1, 1, 1, 1)) - 3 / (n * (n + 2))) == 0
    assert sympy.simplify(moment_of((1, 1, 2, 2), (1, 1, 2, 2)) - (n + 1) / (n * (n - 1) * (n + 2))) == 0
    assert sympy.simplify(moment_of((1, 1, 1, 1), (1, 1, 2, 2)) - 1 / (n * (n + 2))) == 0
    assert len(pair_partitions(range(8))) == 105


def test_dependency_graph():
    g = dependency_graph("gaussian")
    assert set(g["K"]) == {"K"} and set(g["V"]) == {"K", "V"} and set(g["G1"]) == {"K", "G1", "V"}
    assert set(g["B"]) == {"K", "Theta", "B"} and set(g["F"]) == {"K", "Theta", "F"}
    assert set(g["Theta1"]) == {"K", "G1", "V", "Theta", "Theta1", "D", "F"}
    assert set(g["A"]) == {"K", "V", "Theta", "D", "A"}


def test_expectation_of_second_moment_is_exact_kernel_plus_G1():
    e = expectation((("z", "i"), ("z", "i")), "gaussian")
    eps = sympy.Symbol("epsilon", positive=True)
    assert sympy.simplify(e - (C_b + C_W * (s2 + eps * (G1 * moment(s=2, dk=1) + V / 2 * moment(s=2, dk=2))))) == 0


def test_bad_names():
    with pytest.raises(ParameterError, match="name"):
        derive("X")
    with pytest.raises(ParameterError, match="ensemble"):
        derive("V", "unitary")


# --- NTK descendants (issue 7). Oracle: the single-input reduction of the third-party
# transcription of PDLT Ch. 11 and Ch. infinity from a public third-party implementation
# (unverified, docs/unverified.md; the Monte Carlo
# tests in tests/test_mc_descendants.py arbitrate). <sigma'' sigma> + <sigma'^2> = <z sigma sigma'>/K and
# <sigma''' sigma'> + <sigma''^2> = <z sigma' sigma''>/K by Gaussian integration by parts.
Pd, Qd, Rd, Sd, Td, Ud = (S[k] for k in "PQRSTU")
su, st2u, t2u2, t3v, tv, u2 = (moment(s=1, u=1), moment(s=1, t=2, u=1), moment(t=2, u=2),
                               moment(t=3, v=1), moment(t=1, v=1), moment(u=2))
stz_K = moment(s=1, t=1, z=1) / K      # <sigma'^2 + sigma sigma''>
tuz_K = moment(t=1, u=1, z=1) / K      # <sigma''^2 + sigma' sigma'''>
lam = lambda_W
F_next = C_W**2 * s2t2 * Th + C_W**2 * stz_K**2 * F   # Gaussian F^(l+1)
DESCENDANTS = {
    "P": C_W**2 * st2u * Th**2 + C_W**2 * t2 * (su * Pd + (stz_K - su) * Pd + su * B),
    "Q": C_W**2 * st2u * Th**2 + lam / C_W * F_next + C_W**2 * t2 * stz_K * Qd
         + C_W**2 * Th * tuz_K * stz_K * F,
    "R": (lam * C_W * st2u * Th**2 + C_W * lam * t2 * (su * (B + Pd) + (stz_K - su) * Pd)
          + C_W**2 * t3v * Th**3 + C_W**2 * t2 * Th * (tv * (B + Pd) + (tuz_K - tv) * Pd)
          + C_W**2 * t2**2 * Rd),
    "S": (C_W * lam * t4 * Th**2 + C_W * t2 * (lam * t2 + C_W * Th * u2) * B
          + C_W**2 * t2u2 * Th**3 + C_W**2 * t2**2 * Sd),
    "T": (lam**2 * s2t2 * Th + lam**2 * stz_K**2 * F + 2 * C_W * lam * st2u * Th**2
          + 2 * C_W * lam * Th * stz_K * tuz_K * F + 2 * C_W * lam * t2 * stz_K * Qd
          + C_W**2 * t2**2 * Td + C_W**2 * t2u2 * Th**3 + C_W**2 * Th**2 * tuz_K**2 * F
          + 2 * C_W**2 * Th * t2 * tuz_K * Qd),
    "U": C_W**2 * t2u2 * Th**3 + C_W**2 * t2**2 * Ud,
}


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("name", list("PQRSTU"))
def test_descendant_recursions_match_transcription(name, ensemble):
    derived = derive(name, ensemble)
    assert sympy.simplify(sympy.expand(derived.expr - DESCENDANTS[name])) == 0
    # first layer is linear in its parameters: all second derivatives vanish
    assert derived.initial == {"gaussian": 0, "orthogonal": 0}


def test_chain_rule_derives_the_ntk_forward_equation():
    # PDLT Ch. 8 (docs/conventions.md): Hhat_ik = delta_ik [lambda_b + (lambda_W/n) sum_j s_j^2]
    #                              + sum W_ij1 W_kj2 t_j1 t_j2 Hhat_j1j2
    import itertools

    from fwtheory.symbolic.chain_rule import expand_field

    fresh = itertools.count().__next__
    diag = expand_field("H", ("i", "i"), fresh, n=n)
    shapes = sorted((str(t.coeff), len(t.W), tuple(k for k, _ in t.objects),
                     tuple(sorted(t.site.values()))) for t in diag)
    assert shapes == sorted([
        ("lambda_b", 0, (), ()),
        ("lambda_W/n", 0, (), ((2, 0, 0, 0, 0),)),
        ("1", 2, ("H",), ((0, 1, 0, 0, 0), (0, 1, 0, 0, 0))),
    ])
    off = expand_field("H", ("i", "k"), fresh, n=n)
    assert [len(t.W) for t in off] == [2]
    first = expand_field("H", ("i", "i"), fresh, first_layer=True, n=n)
    assert sorted(str(t.coeff) for t in first) == ["lambda_W/n", "lambda_b"]
    assert expand_field("dH", ("i", "i", "k"), fresh, first_layer=True, n=n) == []


def test_cli_derive_names_every_correlator():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fwtheory", "derive", "U", "--ensemble", "orthogonal"],
                         capture_output=True, text=True, check=True).stdout
    assert "U^(l+1) = " in out and "<t^2 u^2>" in out
    latex = subprocess.run([sys.executable, "-m", "fwtheory", "derive", "P", "--latex"],
                           capture_output=True, text=True, check=True).stdout
    assert r"P^{(\ell+1)}" in latex


def test_derived_results_are_read_only_and_pretty_print():
    """Issue 12: a cached Recursion cannot be mutated by a caller, and sympy's
    pretty printer handles the Gaussian-moment symbols."""
    import io
    from contextlib import redirect_stdout

    rec = derive("V")
    with pytest.raises(TypeError):
        rec.initial["gaussian"] = 99
    with pytest.raises(TypeError):
        rec.initial_exact["orthogonal"] = 99
    assert derive("V").initial["gaussian"] == 0
    buf = io.StringIO()
    with redirect_stdout(buf):
        sympy.pprint(rec.expr)
    assert "dK[<s^2>]" in buf.getvalue()


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_cli_derive_legend_defines_every_symbol_it_uses(ensemble, capsys):
    import re

    from fwtheory.cli import derive as derive_cli
    from fwtheory.cli import main

    assert main(["derive", "all", "--ensemble", ensemble]) == 0
    lines = capsys.readouterr().out.splitlines()
    legend = "\n".join(line for line in lines if line.startswith("#"))
    body = [line for line in lines if not line.startswith("#")]
    assert len([line for line in body if "^(l+1) = " in line]) == len(derive_cli.ALL_CORRELATORS)
    used = set()
    for line in body:
        if line.lstrip().startswith("layer 1"):     # "layer 1 (gaussian first layer: ...); depends on ..."
            line = re.sub(r"\b(layer|gaussian|orthogonal|first|depends|on|nothing)\b", " ", line)
        for inside in re.findall(r"<([^<>]*)>", line):
            used |= {f"{f} = " for f in re.findall(r"([a-z])(?:\^\d+)?", inside)}
        used |= {f"{d}[<...>]" for d in re.findall(r"\b(dK\d*)\[", line)}
        rest = re.sub(r"dK\d*\[<[^<>]*>\]|<[^<>]*>", " ", line)
        used |= {w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rest)}
    assert {"v = ", "dK2[<...>]", "q0", "lambda_W", "Theta1", "U"} <= used
    undefined = sorted(u for u in used if not re.search(r"(?<![A-Za-z0-9_])" + re.escape(u), legend))
    assert not undefined, undefined


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_latex_carries_layer_superscripts(ensemble):
    import re

    from fwtheory.symbolic.symbols import correlator_latex

    assert correlator_latex("G1", r"\ell+1") == r"G^{\{1\}(\ell+1)}"
    for name, sym in S.items():
        rec = derive(name, ensemble)
        lhs, rhs = rec.latex().split(" = ", 1)
        assert lhs == correlator_latex(name, r"\ell+1")
        assert rhs == rec.latex_rhs()
        assert "}^{" not in lhs                                  # no double superscript
        for k, s in S.items():                                  # every layer-l correlator is X^{(l)}
            if s in rec.expr.free_symbols:
                assert correlator_latex(k) in rhs, (name, k)
        # Gaussian expectations at K^(l)
        assert rhs.count(r"\rangle_") == rhs.count(r"\rangle_{K^{(\ell)}}"), name
        stripped = re.sub(r"\\langle .*?\\rangle_\{K\^\{\(\\ell\)\}\}", " ", rhs)
        for k in S:
            stripped = stripped.replace(correlator_latex(k), " ")
        for k, s in S.items():                                  # nothing left without a superscript
            bare = re.escape(sympy.latex(s))
            assert not re.search(r"(?<![A-Za-z\\_])" + bare + r"(?![A-Za-z_{])", stripped), (name, k, stripped)


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(inputs=0), "inputs"), (dict(inputs=2, layer="residual"), "layer"), (dict(layer="residual"), "layer"),
    (dict(layer="conv"), "layer"), (dict(order=2), "order"), (dict(ensemble="uniform"), "ensemble"),
])
def test_derive_refuses_what_it_cannot_do(kwargs, parameter):
    """Issue 12: a bad number of inputs, the residual map, a wrong order or an unknown
    ensemble raise one ParameterError naming the parameter, never a wrong result
    (several inputs: tests/test_multi_input.py)."""
    with pytest.raises(ParameterError, match=f"^{parameter}: "):
        derive("V", **kwargs)


def test_cli_derive_order2_and_refusals(capsys):
    from fwtheory.cli import main

    assert main(["derive", "V1"]) == 0
    assert "V1^(l+1) = " in capsys.readouterr().out
    assert main(["derive", "all", "--order", "2", "--json"]) == 0
    import json
    assert set(json.loads(capsys.readouterr().out)["recursions"]) == {"G2", "V1", "U6"}
    assert main(["derive", "P", "--inputs", "2"]) == 2      # descendants: one input only
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fwtheory derive: error: name:")


def test_non_rotation_invariant_ensemble_is_refused_not_truncated():
    """Issue 12: an i.i.d. ensemble with a fourth cumulant, registered like the
    built-ins, must not silently lose its kappa_4 terms."""
    from fwtheory.symbolic import ensembles

    class Uniform(ensembles.GaussianEnsemble):     # same pairings, but a fourth cumulant
        name = "test-uniform"
        rotation_invariant = False
        fourth_cumulant = sympy.Rational(-6, 5)

    ensembles.register_ensemble(Uniform())
    try:
        with pytest.raises(ParameterError, match="^ensemble: 'test-uniform' is not rotation invariant"):
            derive("G1", "test-uniform")
    finally:
        ensembles._ENSEMBLES.pop("test-uniform")
