"""Split derived recursions into their affine parts (used when compiling them)."""

__all__ = ["affine_parts"]


def affine_parts(exprs, variables, what):
    """(c, M) with exprs[k] = c[k] + sum_j M[k][j] variables[j], for sympy expressions
    ``exprs`` (a sequence of (name, expression) pairs) that are affine in ``variables``;
    AssertionError naming ``what`` when one is not."""
    import sympy

    c_vec, m_mat = [], []
    for name, expr in exprs:
        expr = sympy.expand(expr)
        row = [expr.coeff(x, 1) for x in variables]
        const = sympy.expand(expr - sum(r * x for r, x in zip(row, variables)))
        if any(x in e.free_symbols for e in row + [const] for x in variables):
            raise AssertionError(f"derived {name} recursion is not affine in {what}")
        c_vec.append(const)
        m_mat.append(row)
    return c_vec, m_mat
