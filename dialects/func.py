"""The func dialect: functions, calls and returns, as in MLIR.

``func.func`` has a pretty form, ``func.func @f(%x: i32) -> i32 { ... }``; in generic form its
signature lives in the properties ``sym_name``, ``function_type``, ``sym_visibility``, ``arg_attrs``
and ``res_attrs``, exactly as MLIR and xDSL print it.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.dialect import Dialect
from xir.ir import Operation, Region
from xir.opdef import (AnyType, ArrayOf, OfClass, StringAttrC, StringOf, SymbolRefC, TypeAttrC,
                       prop, region, var_operand, var_result)
from xir.traits import HasParent, IsolatedFromAbove, IsTerminator, ReturnLike, SymbolTable


class FuncOp(Operation):
    """A function: a symbol with a signature and a body region (empty for a declaration)."""

    name = "func.func"
    body = region()
    sym_name = prop(StringAttrC)
    function_type = prop(TypeAttrC)
    sym_visibility = prop(StringOf("public", "private", "nested"), optional=True)
    arg_attrs = prop(ArrayOf(OfClass((A.DictionaryAttr,), "dictionary")), optional=True)
    res_attrs = prop(ArrayOf(OfClass((A.DictionaryAttr,), "dictionary")), optional=True)
    traits = (IsolatedFromAbove(),)

    @classmethod
    def from_signature(cls, name: str, arg_types, result_types, arg_attrs=None, result_attrs=None,
                       visibility=None, attributes=None, body: Region | None = None, location=None):
        """A function named ``name``; a body region with an entry block of ``arg_types`` is
        created if ``body`` is None and ``body`` is requested by passing ``Region()``."""
        props = {
            "sym_name": A.StringAttr(name),
            "function_type": A.TypeAttr(T.FunctionType(tuple(arg_types), tuple(result_types))),
        }
        if visibility is not None:
            props["sym_visibility"] = A.StringAttr(visibility)
        for key, dicts in (("arg_attrs", arg_attrs), ("res_attrs", result_attrs)):
            if dicts and any(dicts):
                props[key] = A.ArrayAttr(tuple(A.DictionaryAttr(d or {}) for d in dicts))
        op = Operation.__new__(cls)
        Operation.__init__(op, cls.name, (), (), attributes, props,
                           [body if body is not None else Region()], location=location)
        return op

    @property
    def signature(self) -> T.FunctionType:
        return self.function_type.value

    @property
    def is_declaration(self) -> bool:
        return not self.regions[0].blocks

    def verify_(self) -> None:
        signature = self.function_type.value
        if not isinstance(signature, T.FunctionType):
            raise self.error("requires 'function_type' to be a function type")
        if self.is_declaration:
            return
        entry = self.regions[0].blocks[0]
        arg_types = tuple(a.type for a in entry.args)
        if arg_types != signature.inputs:
            raise self.error(f"entry block arguments ({', '.join(map(str, arg_types))}) do not match "
                             f"the function signature ({', '.join(map(str, signature.inputs))})")


class ReturnOp(Operation):
    """Returns values from a function; their types must match the function's results."""

    name = "func.return"
    values = var_operand(AnyType)
    traits = (IsTerminator(), ReturnLike(), HasParent("func.func"))

    def verify_(self) -> None:
        func = self.parent_op
        expected = func.function_type.value.results
        got = tuple(v.type for v in self._operands)
        if len(got) != len(expected):
            raise self.error(f"has {len(got)} operands, but enclosing function (@{func.sym_name.value}) "
                             f"returns {len(expected)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            if g != e:
                raise self.error(f"type of return operand {i} ('{g}') doesn't match function "
                                 f"result type ('{e}') in function @{func.sym_name.value}")


class CallOp(Operation):
    """Calls the function ``callee`` with ``args``."""

    name = "func.call"
    args = var_operand(AnyType)
    outputs = var_result(AnyType)
    callee = prop(SymbolRefC)

    def callee_op(self) -> Operation | None:
        """The op ``callee`` names, looked up from the nearest enclosing symbol table."""
        from xir.symbols import resolve_symbol

        scope = self.parent_op
        while scope is not None:
            if scope.definition is not None and scope.definition.has_trait(SymbolTable):
                found = resolve_symbol(scope, self.callee)
                if found is not None:
                    return found
            scope = scope.parent_op
        return None

    def verify_(self) -> None:
        callee = self.callee_op()
        if callee is None or callee.name != "func.func":
            raise self.error(f"'{self.callee}' does not reference a valid function")
        signature = callee.function_type.value
        got = tuple(v.type for v in self.operands)
        if got != signature.inputs:
            raise self.error(f"operand types ({', '.join(map(str, got))}) do not match the "
                             f"inputs of {self.callee} ({', '.join(map(str, signature.inputs))})")
        got = tuple(r.type for r in self.results)
        if got != signature.results:
            raise self.error(f"result types ({', '.join(map(str, got))}) do not match the "
                             f"results of {self.callee} "
                             f"({', '.join(map(str, signature.results))})")

    def evaluate(self, *args):
        """Run the callee with the reference interpreter on ``args``; its results."""
        from xir.interpreter import run_function

        callee = self.callee_op()
        if callee is None or callee.name != "func.func" or callee.is_declaration:
            what = "a function with a body" if callee is not None else "defined"
            raise self.error(f"calls {self.callee}, which is not {what}")
        return run_function(callee, list(args))


FUNC = Dialect("func", [FuncOp, ReturnOp, CallOp], "Functions, calls and returns.")
