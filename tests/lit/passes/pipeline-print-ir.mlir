// RUN: xir-opt %s -p 'cse,dce' --print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=AFTER-ALL
// RUN: xir-opt %s -p 'cse,dce' --print-ir-before=dce --print-ir-after=cse,dce 2>&1 >/dev/null | filecheck %s --check-prefix=NAMED
// RUN: xir-opt %s -p 'cse,dce' --print-ir-before-all --print-op-generic 2>&1 >/dev/null | filecheck %s --check-prefix=GENERIC
// RUN: xir-opt %s -p 'cse,dce' --print-ir-after-all 2>/dev/null | filecheck %s --check-prefix=OUT

// IR dumps go to stderr, one per pass, headed the way mlir-opt heads them; the result still goes
// to stdout.

// AFTER-ALL:      // -----// IR Dump After cse //----- //
// AFTER-ALL-NEXT: builtin.module {
// AFTER-ALL:        ^dead:
// AFTER-ALL:      // -----// IR Dump After dce //----- //
// AFTER-ALL-NEXT: builtin.module {
// AFTER-ALL-NOT:    ^dead:
// AFTER-ALL-NOT:  IR Dump

// NAMED:      // -----// IR Dump After cse //----- //
// NAMED:      // -----// IR Dump Before dce //----- //
// NAMED:      // -----// IR Dump After dce //----- //
// NAMED-NOT:  IR Dump

// GENERIC:      // -----// IR Dump Before cse //----- //
// GENERIC-NEXT: "builtin.module"() ({
// GENERIC:      // -----// IR Dump Before dce //----- //
// GENERIC-NEXT: "builtin.module"() ({

// OUT-NOT:  IR Dump
// OUT:      func.func @f(%x: i32) -> i32 {
// OUT-NEXT:   "func.return"(%x) : (i32) -> ()
// OUT-NEXT: }
func.func @f(%x: i32) -> i32 {
  "func.return"(%x) : (i32) -> ()
^dead:
  "func.return"(%x) : (i32) -> ()
}
