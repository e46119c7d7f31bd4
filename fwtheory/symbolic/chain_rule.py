"""Forward equations by differentiating the network (the chain rule, symbolically).

The layer map z_i = b_i + sum_j W_ij sigma(z^(l)_j) is differentiated with
respect to abstract parameter *slots*. A slot binds to a bias b_m of layer l+1,
a weight W_mj of layer l+1, or a parameter below, where it attaches to a
derivative node d^k z^(l)_j / d theta ... of layer l. Derivatives of sigma^(m)
raise m (sigma -> sigma' -> sigma'' -> sigma''').

The NTK-family objects are contractions of such derivatives with the
learning-rate tensor (PDLT arXiv:2106.10165 Ch. 7, 11, infinity; lambda_b per
bias, lambda_W / n per weight):

    Hhat_{i1 i2}          = sum lambda  dz_{i1} dz_{i2}
    dHhat_{i0 i1 i2}      = sum lambda lambda  d2z_{i0}[a, b] dz_{i1}[a] dz_{i2}[b]
    ddIHhat_{i0 i1 i2 i3} = sum lambda^3  d3z_{i0}[a, b, c] dz_{i1}[a] dz_{i2}[b] dz_{i3}[c]
    ddIIHhat_{i1 i2 i3 i4}= sum lambda^3  d2z_{i1}[a, b] d2z_{i2}[a, c] dz_{i3}[b] dz_{i4}[c]

Contracting two slots: bias-bias gives lambda_b delta_{rows}; weight-weight gives
(lambda_W / n) delta_{rows} delta_{columns}; below-below joins two layer-l
derivative nodes. The joined nodes of each connected component form a layer-l
object, identified by its shape: two first derivatives = Hhat, a Hessian with two
first derivatives = dHhat, a third derivative with three = ddIHhat, two Hessians
joined once, each with a first derivative = ddIIHhat. The result is the forward
equation of the object (e.g. PDLT Ch. 8 for the NTK), as terms over
layer-(l+1) weights, biases, single-neuron functions and layer-l objects.
"""

__all__ = ["OBJECTS", "expand_field", "FieldTerm"]

import itertools

import sympy

from .symbols import lambda_W, lambda_b

_ZERO = (0, 0, 0, 0, 0)

#: object -> (derivative orders of the factors, slot contractions as ((factor, slot), (factor, slot)))
OBJECTS = {
    "z": ((0,), ()),
    "H": ((1, 1), (((0, 0), (1, 0)),)),
    "dH": ((2, 1, 1), (((0, 0), (1, 0)), ((0, 1), (2, 0)))),
    "ddI": ((3, 1, 1, 1), (((0, 0), (1, 0)), ((0, 1), (2, 0)), ((0, 2), (3, 0)))),
    "ddII": ((2, 2, 1, 1), (((0, 0), (1, 0)), ((0, 1), (2, 0)), ((1, 1), (3, 0)))),
}


class FieldTerm:
    """coeff * prod W[row, col] * prod b[row] * prod_sites f_j * prod layer-l objects.

    ``objects``: tuple of (kind, dummies) with kind in H, dH, ddI, ddII."""

    __slots__ = ("coeff", "W", "b", "site", "objects")

    def __init__(self, coeff, W=(), b=(), site=None, objects=()):
        self.coeff, self.W, self.b = coeff, tuple(W), tuple(b)
        self.site = dict(site or {})
        self.objects = tuple(objects)

    def __mul__(self, other):
        site = dict(self.site)
        for d, p in other.site.items():
            site[d] = tuple(x + y for x, y in zip(site.get(d, _ZERO), p))
        return FieldTerm(self.coeff * other.coeff, self.W + other.W, self.b + other.b, site,
                         self.objects + other.objects)


class _DTerm:
    """A term of a derivative of z_i with slot bindings (internal)."""

    __slots__ = ("coeff", "W", "b", "site", "nodes", "bind")

    def __init__(self, coeff, W, b, site, nodes, bind):
        self.coeff, self.W, self.b = coeff, W, b
        self.site, self.nodes, self.bind = site, nodes, bind

    def copy(self):
        return _DTerm(self.coeff, list(self.W), list(self.b), dict(self.site),
                      {k: list(v) for k, v in self.nodes.items()}, dict(self.bind))


def _differentiate(term, slot, fresh):
    """All terms of d(term)/d theta_slot (product rule over every factor)."""
    out = []
    for idx, row in enumerate(term.b):
        t = term.copy()
        del t.b[idx]
        t.bind[slot] = ("b", row)
        out.append(t)
    for idx, (row, col) in enumerate(term.W):
        t = term.copy()
        del t.W[idx]
        t.bind[slot] = ("w", row, col)
        out.append(t)
    for dummy, powers in term.site.items():
        for m, p in enumerate(powers):
            if p == 0:
                continue
            new = list(powers)
            new[m] -= 1
            if m < 3:
                new[m + 1] += 1
            elif m == 3:
                raise NotImplementedError("fourth derivative of sigma is not supported")
            if m == 4:  # z -> dz: no sigma factor raised
                new = list(powers)
                new[4] -= 1
            t = term.copy()
            t.coeff = t.coeff * p
            t.site[dummy] = tuple(new)
            node = fresh()
            t.nodes[node] = [dummy, [slot]]
            t.bind[slot] = ("theta", node)
            out.append(t)
    for node, (dummy, slots) in term.nodes.items():
        t = term.copy()
        t.nodes[node] = [dummy, slots + [slot]]
        t.bind[slot] = ("theta", node)
        out.append(t)
    return out


def _derivatives_of_z(label, order, slots, fresh, first_layer, sample=None):
    """Terms of d^order z_label / d theta_slots (layer l+1); with a ``sample``
    label (several inputs) the site and derivative-node keys are (dummy, sample)."""
    j = fresh()
    key = j if sample is None else (j, sample)
    terms = [_DTerm(sympy.Integer(1), [], [label], {}, {}, {}),
             _DTerm(sympy.Integer(1), [(label, j)], [], {key: (1, 0, 0, 0, 0)}, {}, {})]
    if first_layer:
        # the first layer acts on the fixed input x_j: no parameters below; the input
        # component is recorded as the power of z at the site (x_j^1)
        terms[1].site[key] = (0, 0, 0, 0, 1)
    for slot in slots[:order]:
        new = []
        for t in terms:
            for d in _differentiate(t, slot, fresh):
                if first_layer and d.bind[slot][0] == "theta":
                    continue
                new.append(d)
        terms = new
    return terms


class _UnionFind(dict):
    def find(self, a):
        self.setdefault(a, a)
        while self[a] != a:
            self[a] = self[self[a]]
            a = self[a]
        return a

    def union(self, a, b):
        self[self.find(a)] = self.find(b)


def _identify(nodes, edges):
    """Turn connected layer-l derivative nodes into objects (kind, dummies)."""
    uf = _UnionFind()
    for n in nodes:
        uf.find(n)
    for a, b in edges:
        uf.union(a, b)
    comps = {}
    for n in nodes:
        comps.setdefault(uf.find(n), []).append(n)
    adjacency = {n: [] for n in nodes}
    for a, b in edges:
        adjacency[a].append(b)
        adjacency[b].append(a)
    objects = []
    for comp in comps.values():
        order = {n: len(nodes[n][1]) for n in comp}
        degree = {n: len(adjacency[n]) for n in comp}
        if any(order[n] != degree[n] for n in comp):
            raise AssertionError("a layer-l derivative slot was left uncontracted")
        dummy = {n: nodes[n][0] for n in comp}
        shape = sorted(order.values())
        if shape == [1, 1]:
            a, b = comp
            objects.append(("H", (dummy[a], dummy[b])))
        elif shape == [1, 1, 2]:
            (hub,) = [n for n in comp if order[n] == 2]
            leaves = adjacency[hub]
            objects.append(("dH", (dummy[hub], dummy[leaves[0]], dummy[leaves[1]])))
        elif shape == [1, 1, 1, 3]:
            (hub,) = [n for n in comp if order[n] == 3]
            objects.append(("ddI", (dummy[hub],) + tuple(dummy[x] for x in adjacency[hub])))
        elif shape == [1, 1, 2, 2]:
            h1, h2 = [n for n in comp if order[n] == 2]
            (l1,) = [x for x in adjacency[h1] if x != h2]
            (l2,) = [x for x in adjacency[h2] if x != h1]
            objects.append(("ddII", (dummy[h1], dummy[h2], dummy[l1], dummy[l2])))
        else:
            raise NotImplementedError(f"layer-l object of shape {shape} is not in the effective theory")
    return objects


def _root(uf, key):
    """Representative of a site key: a dummy, or (dummy, sample) for several inputs."""
    return (uf.find(key[0]), key[1]) if isinstance(key, tuple) else uf.find(key)


def expand_field(kind, labels, fresh, first_layer=False, n=None, samples=None):
    """Forward equation of the object ``kind`` at external neuron labels ``labels``,
    as a list of :class:`FieldTerm` (layer-(l+1) weights/biases, layer-l sites and objects).

    ``n`` is the sympy symbol of the width of layer l (the fan-in of layer l+1).
    ``samples`` (several inputs, :mod:`.multi_input`): one sample label per
    factor; the sites and object dummies are then keyed (dummy, sample), since
    sigma(z_{j;alpha}) and sigma(z_{j;beta}) at one neuron j are different factors.
    """
    orders, contractions = OBJECTS[kind]
    slot_names = [[(f, s) for s in range(o)] for f, o in enumerate(orders)]
    samples = samples if samples is not None else (None,) * len(orders)
    per_factor = [_derivatives_of_z(label, o, names, fresh, first_layer, sample)
                  for label, o, names, sample in zip(labels, orders, slot_names, samples)]
    out = []
    for combo in itertools.product(*per_factor):
        coeff = sympy.Integer(1)
        W, b, site, nodes, bind = [], [], {}, {}, {}
        for t in combo:
            coeff *= t.coeff
            W += t.W
            b += t.b
            for d, p in t.site.items():
                site[d] = tuple(x + y for x, y in zip(site.get(d, _ZERO), p))
            nodes.update(t.nodes)
            bind.update(t.bind)
        uf = _UnionFind()
        edges, alive = [], True
        for s1, s2 in contractions:
            b1, b2 = bind[s1], bind[s2]
            if b1[0] != b2[0]:
                alive = False
                break
            if b1[0] == "b":
                if b1[1] != b2[1]:
                    alive = False
                    break
                coeff *= lambda_b
            elif b1[0] == "w":
                if b1[1] != b2[1]:
                    alive = False
                    break
                coeff *= lambda_W / n
                uf.union(b1[2], b2[2])
            else:
                edges.append((b1[1], b2[1]))
        if not alive:
            continue
        site2 = {}
        for d, p in site.items():
            r = _root(uf, d)
            site2[r] = tuple(x + y for x, y in zip(site2.get(r, _ZERO), p))
        nodes2 = {k: [_root(uf, v[0]), v[1]] for k, v in nodes.items()}
        objects = [(kind_, tuple(_root(uf, d) for d in dums))
                   for kind_, dums in _identify(nodes2, edges)]
        W2 = [(r, uf.find(c)) for r, c in W]
        out.append(FieldTerm(coeff, W2, b, site2, objects))
    return out
