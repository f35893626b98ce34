// RUN: xir-opt --split-input-file --verify-diagnostics %s

// The verifier checks each field against its width, and each bank access against the bank
// groups of the target the program names (docs/dpuisa.md).

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.load' op bank_addr = 16384 does not fit its 14 bits: range [0, 16383]}}
  "dpuisa.load"() {dpdon = 0, dpdby = 0, bank_id = 0, bank_addr = 16384, length = 1, channel = 16, pad_start = 0, jump_read = 16, pad_end = 0, reg_id = 0, jump_write = 1, ddr_addr = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) : () -> ()

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.convinit' op shift_bias = -33 does not fit its 6 signed bits: range [-32, 31]}}
  "dpuisa.convinit"() {dpdon = 0, dpdby = 0, shift_cut = 0, shift_bias = -33, act_type = 0, kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, jump_read = 1, jump_write = 1, shift_hsigmoid = 0, shift_hswish = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) : () -> ()

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.load' op bank_addr = 2048 is beyond bank group VB0's depth 2048 (words 0-2047)}}
  "dpuisa.load"() {dpdon = 0, dpdby = 0, bank_id = 0, bank_addr = 2048, length = 0, channel = 16, pad_start = 0, jump_read = 16, pad_end = 0, reg_id = 0, jump_write = 1, ddr_addr = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "DPUCZDX8G_ISA1_B4096"} : () -> ()

// -----

// The target may be named once, on the module.
builtin.module attributes {dpuisa.target = "DPUCZDX8G_ISA1_B4096"} {
  "dpuisa.program"() ({
    // expected-error @+1 {{'dpuisa.save' op bank_id = 40 is not a bank of DPUCZDX8G_ISA1_B4096 (VB0 0-7, VB1 8-15, CONVW 16-31, DWCONVW 32, BIAS 33)}}
    "dpuisa.save"() {dpdon = 0, dpdby = 0, bank_id = 40, bank_addr = 0, length = 1, channel = 16, jump_read = 1, jump_write = 16, reg_id = 0, ddr_addr = 0} : () -> ()
    "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
  }) : () -> ()
}

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.conv' op bank_id_weights = 3 is in bank group VB0, but the conv engine's weight bank is CONVW}}
  "dpuisa.conv"() {dpdon = 0, dpdby = 0, pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0, bank_id_in = 0, bank_addr_in = 0, bank_id_out = 8, bank_addr_out = 0, length = 4, bank_id_weights = 3, bank_addr_weights = 0, channel_group = 1, bank_id_bias = 33, bank_addr_bias = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "B4096"} : () -> ()

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.poolinit' op needs a pool engine, which DPUCZDX8G_ISA1_B4096 does not have}}
  "dpuisa.poolinit"() {dpdon = 0, dpdby = 0, pool_type = 0, kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, jump_read = 1, jump_write = 1, shift_cut = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "B4096"} : () -> ()

// -----

// expected-error @+1 {{'dpuisa.program' op names an unknown target: unknown target 'B9999'}}
"dpuisa.program"() ({
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) {target = "B9999"} : () -> ()

// -----

// expected-error @+1 {{'dpuisa.program' op dependency tokens LOAD -> CONV do not balance: 1 signalled (dpdby), 0 awaited (dpdon)}}
"dpuisa.program"() ({
  "dpuisa.load"() {dpdon = 0, dpdby = 4, bank_id = 0, bank_addr = 0, length = 1, channel = 16, pad_start = 0, jump_read = 16, pad_end = 0, reg_id = 0, jump_write = 1, ddr_addr = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) : () -> ()

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.elewinit' op act_type = 9 is not a code of act_type (0 none, 1 relu, 2 prelu, 3 leaky_relu, 4 relu_six, 5 hsigmoid, 6 hswish)}}
  "dpuisa.elewinit"() {dpdon = 0, dpdby = 0, elew_type = 0, act_type = 9, shift_write = 0, shift_read_0 = 0, shift_read_1 = 0, jump_read_0 = 1, jump_read_1 = 1, jump_write = 1} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) : () -> ()

// -----

func.func @outside() {
  // expected-error @+1 {{'dpuisa.end' op expects parent op 'dpuisa.program'}}
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
  "func.return"() : () -> ()
}

// -----

// expected-error @+1 {{'dpuisa.program' op must end with exactly one END}}
"dpuisa.program"() ({
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
  "dpuisa.dwinit"() {dpdon = 0, dpdby = 0, shift_cut = 0, shift_bias = 0, act_type = 0, kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, jump_read = 1, jump_write = 1} : () -> ()
}) : () -> ()

// -----

"dpuisa.program"() ({
  // expected-error @+1 {{'dpuisa.conv' op dpdon = 0b0100 names CONV, the queue CONV itself runs on}}
  "dpuisa.conv"() {dpdon = 4, dpdby = 0, pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0, bank_id_in = 0, bank_addr_in = 0, bank_id_out = 8, bank_addr_out = 0, length = 4, bank_id_weights = 16, bank_addr_weights = 0, channel_group = 1, bank_id_bias = 33, bank_addr_bias = 0} : () -> ()
  "dpuisa.end"() {dpdon = 0, dpdby = 0} : () -> ()
}) : () -> ()
