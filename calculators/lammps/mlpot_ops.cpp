/* mlpot's fused kernels as TorchScript operators inside the LAMMPS plugin.

   A model exported with the fused path calls torch.ops.mlpot.edge_tp and torch.ops.mlpot.symmetric
   (mlpot/kernels/edge_tp.py, symmetric.py). In Python those are torch.library custom ops; here the
   same schemas are registered with the same C kernels (mlpot/kernels/edge_tp_cpu.cpp and
   symmetric_cpu.cpp, compiled into this plugin) and the same backward rules, so the exported
   module runs, and is differentiated for forces, exactly as in Python. Each backward is again one
   of the operator's targets or modes (see the Python modules for the identities). */

#include <torch/script.h>
#include <torch/autograd.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

extern "C" {
int mlpot_edge_tp_f32(int, const float*, const float*, const float*, const float*, float*, const int64_t*,
                      const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int32_t,
                      const int32_t*, const int32_t*, const int32_t*, const float*, int);
int mlpot_edge_tp_f64(int, const double*, const double*, const double*, const double*, double*, const int64_t*,
                      const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int32_t,
                      const int32_t*, const int32_t*, const int32_t*, const double*, int);
int mlpot_symmetric_f32(int, const float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                        int64_t, int64_t, int64_t, int32_t, const int32_t*, const int32_t*, const int32_t*,
                        const int64_t*, int);
int mlpot_symmetric_f64(int, const double*, const double*, const double*, const double*, double*, int64_t,
                        int64_t, int64_t, int64_t, int64_t, int32_t, const int32_t*, const int32_t*,
                        const int32_t*, const int64_t*, int);
}

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

template <typename S>
const S* pointer(const Tensor& t) {
  return t.defined() ? t.data_ptr<S>() : nullptr;
}

// ----------------------------------------------------------------------------------------- edge_tp

Tensor edge_tp_kernel(const std::vector<Tensor>& operands, const Tensor& sender, const Tensor& receiver,
                      const Tensor& triples, const Tensor& starts, const Tensor& sh_index, const Tensor& coeff,
                      int64_t target, const std::vector<int64_t>& dims) {
  // dims = [N_senders, N_receivers, D_in, P, D_sh, Q, C]
  const int64_t num_senders = dims[0], num_receivers = dims[1], dim_in = dims[2], num_paths = dims[3],
                dim_sh = dims[4], dim_out = dims[5], channels = dims[6], num_edges = sender.size(0);
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  for (const Tensor& t : operands)
    if (t.defined()) dtype = t.scalar_type();
  auto options = torch::TensorOptions().dtype(dtype);
  std::vector<int64_t> shape;
  switch (target) {
    case 0: shape = {num_senders, dim_in, channels}; break;
    case 1: shape = {num_edges, num_paths, channels}; break;
    case 2: shape = {num_edges, dim_sh}; break;
    default: shape = {num_receivers, dim_out, channels};
  }
  Tensor result = (target == 0 || target == 3) ? torch::zeros(shape, options) : torch::empty(shape, options);
  Tensor s = sender.contiguous(), r = receiver.contiguous(), tr = triples.contiguous(), st = starts.contiguous(),
         sh = sh_index.contiguous(), cf = coeff.to(dtype).contiguous();
  int status;
  if (dtype == torch::kFloat64) {
    status = mlpot_edge_tp_f64(static_cast<int>(target), pointer<double>(operands[0]), pointer<double>(operands[1]),
                               pointer<double>(operands[2]), pointer<double>(operands[3]), result.data_ptr<double>(),
                               s.data_ptr<int64_t>(), r.data_ptr<int64_t>(), num_edges, num_receivers, dim_in, num_paths,
                               dim_sh, dim_out, channels, static_cast<int32_t>(tr.size(0)), tr.data_ptr<int32_t>(),
                               st.data_ptr<int32_t>(), sh.data_ptr<int32_t>(), cf.data_ptr<double>(),
                               at::get_num_threads());
  } else {
    status = mlpot_edge_tp_f32(static_cast<int>(target), pointer<float>(operands[0]), pointer<float>(operands[1]),
                               pointer<float>(operands[2]), pointer<float>(operands[3]), result.data_ptr<float>(),
                               s.data_ptr<int64_t>(), r.data_ptr<int64_t>(), num_edges, num_receivers, dim_in, num_paths,
                               dim_sh, dim_out, channels, static_cast<int32_t>(tr.size(0)), tr.data_ptr<int32_t>(),
                               st.data_ptr<int32_t>(), sh.data_ptr<int32_t>(), cf.data_ptr<float>(),
                               at::get_num_threads());
  }
  TORCH_CHECK(status == 0, "mlpot edge_tp kernel failed with status ", status);
  return result;
}

using OptionalTensor = c10::optional<Tensor>;

// Absent operands are passed as empty optionals: autograd does not accept undefined tensors as
// inputs. Which operands need a gradient is recorded here, since needs_input_grad counts only the
// tensors that were passed.
std::vector<Tensor> defined_operands(const std::vector<OptionalTensor>& operands, AutogradContext* ctx) {
  std::vector<Tensor> tensors;
  std::vector<int64_t> needs;
  for (const OptionalTensor& t : operands) {
    const bool present = t.has_value() && t->defined();
    tensors.push_back(present ? t->contiguous() : Tensor());
    needs.push_back(present && t->requires_grad());
  }
  ctx->saved_data["needs"] = needs;
  return tensors;
}

OptionalTensor optional(const Tensor& t) { return t.defined() ? OptionalTensor(t) : OptionalTensor(); }

class EdgeTP : public torch::autograd::Function<EdgeTP> {
 public:
  static Tensor forward(AutogradContext* ctx, OptionalTensor x, OptionalTensor w, OptionalTensor y, OptionalTensor o,
                        Tensor sender, Tensor receiver, Tensor triples, Tensor starts, Tensor sh_index, Tensor coeff,
                        int64_t target, std::vector<int64_t> dims) {
    std::vector<Tensor> operands = defined_operands({x, w, y, o}, ctx);
    ctx->save_for_backward({operands[0], operands[1], operands[2], operands[3], sender, receiver, triples, starts,
                            sh_index, coeff});
    ctx->saved_data["target"] = target;
    ctx->saved_data["dims"] = dims;
    return edge_tp_kernel(operands, sender, receiver, triples, starts, sh_index, coeff, target, dims);
  }

  // d<grad, target a>/d(operand b) = target b with operand a replaced by grad.
  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const int64_t target = ctx->saved_data["target"].toInt();
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    const std::vector<int64_t> needs = ctx->saved_data["needs"].toIntVector();
    tensor_list grads(12);
    for (int64_t b = 0; b < 4; ++b) {
      if (b == target || !needs[b]) continue;
      std::vector<Tensor> inputs = {saved[0], saved[1], saved[2], saved[3]};
      inputs[target] = grad_outputs[0];
      inputs[b] = Tensor();
      grads[b] = EdgeTP::apply(optional(inputs[0]), optional(inputs[1]), optional(inputs[2]), optional(inputs[3]),
                               saved[4], saved[5], saved[6], saved[7], saved[8], saved[9], b, dims);
    }
    return grads;
  }
};

Tensor edge_tp(const c10::optional<Tensor>& x, const c10::optional<Tensor>& w, const c10::optional<Tensor>& y,
               const c10::optional<Tensor>& o, const Tensor& sender, const Tensor& receiver, const Tensor& triples,
               const Tensor& starts, const Tensor& sh_index, const Tensor& coeff, int64_t target,
               c10::IntArrayRef dims) {
  return EdgeTP::apply(x, w, y, o, sender, receiver, triples, starts, sh_index, coeff, target, dims.vec());
}

// --------------------------------------------------------------------------------------- symmetric

enum Mode : int64_t { VALUE = 0, VJP_X = 1, GRAD_B = 2, JVP = 3, JVP_GRAD_B = 4, HVP = 5 };

Tensor symmetric_kernel(const std::vector<Tensor>& operands, const Tensor& monomials, const Tensor& starts,
                        const Tensor& pair_k, const Tensor& element, int64_t mode, const std::vector<int64_t>& dims) {
  const Tensor& x = operands[0];
  const int64_t num_nodes = dims[0], dim_in = dims[1], dim_out = dims[2], num_pairs = dims[3], channels = dims[4],
                num_elements = dims[5];
  std::vector<int64_t> shape;
  if (mode == VALUE || mode == JVP) shape = {num_nodes, dim_out, channels};
  else if (mode == VJP_X || mode == HVP) shape = {num_nodes, dim_in, channels};
  else shape = {num_elements, num_pairs, channels};
  Tensor result = torch::zeros(shape, x.options());
  Tensor mo = monomials.contiguous(), st = starts.contiguous(), pk = pair_k.contiguous(), el = element.contiguous();
  int status;
  if (x.scalar_type() == torch::kFloat64) {
    status = mlpot_symmetric_f64(static_cast<int>(mode), pointer<double>(operands[0]), pointer<double>(operands[1]),
                                 pointer<double>(operands[2]), pointer<double>(operands[3]), result.data_ptr<double>(),
                                 num_nodes, dim_in, dim_out, num_pairs, channels, static_cast<int32_t>(mo.size(0)),
                                 mo.data_ptr<int32_t>(), st.data_ptr<int32_t>(), pk.data_ptr<int32_t>(),
                                 el.data_ptr<int64_t>(), at::get_num_threads());
  } else {
    status = mlpot_symmetric_f32(static_cast<int>(mode), pointer<float>(operands[0]), pointer<float>(operands[1]),
                                 pointer<float>(operands[2]), pointer<float>(operands[3]), result.data_ptr<float>(),
                                 num_nodes, dim_in, dim_out, num_pairs, channels, static_cast<int32_t>(mo.size(0)),
                                 mo.data_ptr<int32_t>(), st.data_ptr<int32_t>(), pk.data_ptr<int32_t>(),
                                 el.data_ptr<int64_t>(), at::get_num_threads());
  }
  TORCH_CHECK(status == 0, "mlpot symmetric kernel failed with status ", status);
  return result;
}

class Symmetric : public torch::autograd::Function<Symmetric> {
 public:
  static Tensor forward(AutogradContext* ctx, OptionalTensor x, OptionalTensor B, OptionalTensor G,
                        OptionalTensor H, Tensor monomials, Tensor starts, Tensor pair_k, Tensor element, int64_t mode,
                        std::vector<int64_t> dims) {
    std::vector<Tensor> operands = defined_operands({x, B, G, H}, ctx);
    ctx->save_for_backward({operands[0], operands[1], operands[2], operands[3], monomials, starts, pair_k, element});
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["dims"] = dims;
    return symmetric_kernel(operands, monomials, starts, pair_k, element, mode, dims);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto s = ctx->get_saved_variables();
    const Tensor &x = s[0], &B = s[1], &G = s[2], &H = s[3], &grad = grad_outputs[0];
    const int64_t mode = ctx->saved_data["mode"].toInt();
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    auto op = [&](int64_t m, const Tensor& B_, const Tensor& G_, const Tensor& H_) {
      return Symmetric::apply(optional(x), optional(B_), optional(G_), optional(H_), s[4], s[5], s[6], s[7], m, dims);
    };
    const std::vector<int64_t> needs = ctx->saved_data["needs"].toIntVector();
    const bool nx = needs[0], nB = needs[1], nG = needs[2], nH = needs[3];
    Tensor gx, gB, gG, gH, none;
    switch (mode) {
      case VALUE:
        if (nx) gx = op(VJP_X, B, grad, none);
        if (nB) gB = op(GRAD_B, none, grad, none);
        break;
      case VJP_X:
        if (nG) gG = op(JVP, B, none, grad);
        if (nB) gB = op(JVP_GRAD_B, none, G, grad);
        if (nx) gx = op(HVP, B, G, grad);
        break;
      case GRAD_B:
        if (nG) gG = op(VALUE, grad, none, none);
        if (nx) gx = op(VJP_X, grad, G, none);
        break;
      case JVP:
        if (nH) gH = op(VJP_X, B, grad, none);
        if (nB) gB = op(JVP_GRAD_B, none, grad, H);
        if (nx) gx = op(HVP, B, grad, H);
        break;
      case JVP_GRAD_B:
        if (nG) gG = op(JVP, grad, none, H);
        if (nH) gH = op(VJP_X, grad, G, none);
        if (nx) gx = op(HVP, grad, G, H);
        break;
      default:
        TORCH_CHECK(!(nx || nB || nG), "third derivatives of the fused symmetric contraction are not implemented");
        if (nH) gH = op(HVP, B, G, grad);
    }
    tensor_list grads(10);
    grads[0] = gx;
    grads[1] = gB;
    grads[2] = gG;
    grads[3] = gH;
    return grads;
  }
};

Tensor symmetric(const Tensor& x, const c10::optional<Tensor>& B, const c10::optional<Tensor>& G,
                 const c10::optional<Tensor>& H, const Tensor& monomials, const Tensor& starts, const Tensor& pair_k,
                 const Tensor& element, int64_t mode, c10::IntArrayRef dims) {
  return Symmetric::apply(OptionalTensor(x), B, G, H, monomials, starts, pair_k, element, mode, dims.vec());
}

}  // namespace

// The schemas of mlpot/kernels/edge_tp.py and symmetric.py, as torch.library writes them (int as
// SymInt): an AOTInductor package checks a call's serialized argument types against them.
#ifndef MLPOT_OPS_NAMESPACE
#define MLPOT_OPS_NAMESPACE mlpot
#endif
TORCH_LIBRARY(MLPOT_OPS_NAMESPACE, m) {
  m.def("edge_tp(Tensor? x, Tensor? w, Tensor? y, Tensor? o, Tensor sender, Tensor receiver, Tensor triples, "
        "Tensor starts, Tensor sh_index, Tensor coeff, SymInt target, SymInt[] dims) -> Tensor",
        &edge_tp);
  m.def("symmetric(Tensor x, Tensor? B, Tensor? G, Tensor? H, Tensor monomials, Tensor starts, Tensor pair_k, "
        "Tensor element, SymInt mode, SymInt[] dims) -> Tensor",
        &symmetric);
}
