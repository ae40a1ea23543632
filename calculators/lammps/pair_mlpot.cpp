/* pair_style mlpot: see pair_mlpot.h for usage and README.md for the design.

   Per step, on each rank:
     1. pairs closer than r_max from the full neighbour list, ghosts' neighbours included;
     2. the graph distance ("hops") of every atom from this rank's local atoms, by breadth-first
        search over those pairs. The energy of the local atoms after L interactions depends on
        the atoms within L hops only, and on the incoming edges of atoms within L - 1 hops;
     3. one graph node per atom ID at its image with the fewest hops, the other images being
        that node plus a shift (on one rank every ghost is an image of a local atom, and the
        graph is the periodic one ASE builds), with edges into nodes within L - 1 hops only.
        Both cuts change no number and remove most of the ghost shell's work;
     4. one call of the exported model (a TorchScript module, file *.pt, or an AOTInductor package,
        *.pt2: the same function compiled ahead of time by `mlpot export --format aoti`); forces (on local and ghost nodes), energy, per-atom
        energy, global, per-atom and centroid virial are added to LAMMPS's arrays;
     5. with newton off, ghost forces and per-atom virials are sent back to their owners here
        (with newton on LAMMPS does that itself). */

// torch first: LAMMPS headers define macros (FLERR, ...) that torch's headers need not see.
#include <torch/script.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <ATen/Parallel.h>

#include "pair_mlpot.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <malloc.h>
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

using namespace LAMMPS_NS;

static const char *const FORMAT = "mlpot-lammps/1";           // TorchScript file
static const char *const PACKAGE_FORMAT = "mlpot-aoti/1";     // AOTInductor package

// Chemical symbols by atomic number (index 0 unused).
static const char *const SYMBOLS[] = {
    "X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si",
    "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu",
    "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru",
    "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
    "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac",
    "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf",
    "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
static const int NUM_SYMBOLS = sizeof(SYMBOLS) / sizeof(SYMBOLS[0]);

struct PairMLPot::Model {
  torch::jit::Module module;                                               // a *.pt file, or
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;        // a *.pt2 package
  std::vector<std::string> outputs;    // the package's outputs in order (its "outputs" record)
  std::string path;
  std::vector<std::string> elements;    // symbols in model order
  double r_max = 0.0;
  int num_interactions = 0;
  torch::Dtype dtype = torch::kFloat64;
  std::string dtype_name, mlpot_version;
};

namespace {

// The first sentence of an exception message (torch's carry backtraces and advice).
std::string first_line(const std::string &text)
{
  std::string line = text.substr(0, text.find('\n'));
  const size_t stop = line.find(". ");
  if (stop != std::string::npos) line = line.substr(0, stop + 1);
  return line.empty() ? std::string("unknown error") : line;
}

// The cause of an error raised inside a TorchScript module: the interpreter's message starts
// with "The following operation failed" and ends with the original error's last line.
std::string script_error(const std::string &text)
{
  size_t end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return "unknown error";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

int atomic_number(const std::string &symbol)
{
  for (int z = 1; z < NUM_SYMBOLS; ++z)
    if (symbol == SYMBOLS[z]) return z;
  return 0;
}

std::string join(const std::vector<std::string> &words)
{
  std::string out;
  for (const auto &word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

bool ends_with(const std::string &text, const std::string &end)
{
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// Load `path` into `model`; returns an empty string on success, else the one-line reason.
// *.pt2 is an AOTInductor package, anything else a TorchScript file; both carry the same records.
std::string load_model(const std::string &path, PairMLPot::Model &model)
{
  const bool is_package = ends_with(path, ".pt2");
  const std::string how = is_package
      ? "export it with `mlpot export --model M.model --format aoti -o M.pt2`"
      : "export it with `mlpot export --model M.model --format lammps -o M-lammps.pt`";
  const char *const expected = is_package ? PACKAGE_FORMAT : FORMAT;
  if (!std::ifstream(path, std::ios::binary).good())
    return "cannot open model file " + path + " (missing or not readable)";
  std::unordered_map<std::string, std::string> extra{{"format", ""},           {"elements", ""}, {"r_max", ""},
                                                     {"num_interactions", ""}, {"dtype", ""},    {"mlpot_version", ""}};
  if (is_package) {
    try {
      model.package = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
    } catch (const std::exception &e) {
      return path + " is not an exported mlpot model (not an AOTInductor package for this torch: " +
          first_line(e.what()) + "); " + how;
    }
    for (const auto &record : model.package->get_metadata()) extra[record.first] = record.second;
    std::istringstream names(extra["outputs"]);
    model.outputs.clear();
    for (std::string name; names >> name;) model.outputs.push_back(name);
    for (const char *name : {"energy", "node_energy", "forces", "virial", "atom_virial"})
      if (std::find(model.outputs.begin(), model.outputs.end(), name) == model.outputs.end())
        return path + " does not list the output '" + name + "' in its 'outputs' record; " + how;
  } else {
    try {
      model.module = torch::jit::load(path, torch::kCPU, extra);
    } catch (const std::exception &e) {
      return path + " is not an exported mlpot model (not a TorchScript archive: " +
          first_line(e.what()) + "); " + how;
    }
  }
  const std::string &format = extra["format"];
  if (format != expected) {
    if (format.rfind(is_package ? "mlpot-aoti/" : "mlpot-lammps/", 0) == 0)
      return path + " has format " + format + " but this pair style reads " + expected +
          "; rebuild the plugin with the mlpot that exported it (mlpot lammps build)";
    return path + " is not an exported mlpot model (no '" + expected + "' format record); " + how;
  }
  std::istringstream symbols(extra["elements"]);
  model.elements.clear();
  for (std::string symbol; symbols >> symbol;) model.elements.push_back(symbol);
  try {
    model.r_max = std::stod(extra["r_max"]);
    model.num_interactions = std::stoi(extra["num_interactions"]);
  } catch (const std::exception &) {
    return path + " has a malformed r_max or num_interactions record; " + how;
  }
  model.dtype_name = extra["dtype"];
  if (model.dtype_name == "float64")
    model.dtype = torch::kFloat64;
  else if (model.dtype_name == "float32")
    model.dtype = torch::kFloat32;
  else
    return path + " has an unknown dtype record '" + model.dtype_name + "'; " + how;
  if (model.elements.empty() || model.r_max <= 0.0 || model.num_interactions < 1)
    return path + " has empty elements or a non-positive r_max or num_interactions; " + how;
  model.mlpot_version = extra["mlpot_version"];
  model.path = path;
  if (!is_package) model.module.eval();
  return "";
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairMLPot::PairMLPot(LAMMPS *lmp) : Pair(lmp), reverse_fields(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  ghostneigh = 1;                         // neighbour lists of ghost atoms too
  no_virial_fdotr_compute = 1;            // the module returns the virial itself
  centroidstressflag = CENTROID_AVAIL;    // and the per-atom 3x3 virial for compute centroid/stress/atom
  comm_reverse = comm_reverse_off = 3 + 6 + 9;
  // The graph changes size every step: the profiling executor would re-specialise the
  // backward graph for each new shape. The plain interpreter runs the same ops as eager.
  torch::jit::setGraphExecutorOptimize(false);
  // As mlpot.allocator does for Python: serve large per-edge tensors from the heap and keep
  // freed memory, instead of a fresh mmap (and page faults) for each of them every step.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

PairMLPot::~PairMLPot()
{
  if (copymode) return;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairMLPot::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) setflag[i][j] = 0;
}

void PairMLPot::fail(const std::string &message)
{
  error->all(FLERR, "pair_style mlpot: " + message);
}

/* Collective: if any rank failed, every rank stops with the message of the lowest failing
   rank (error->all prints on rank 0 only, so the message is sent there). */
void PairMLPot::fail_if_any(bool failed_here, const std::string &message)
{
  int me = comm->me, first = failed_here ? me : comm->nprocs, lowest = 0;
  MPI_Allreduce(&first, &lowest, 1, MPI_INT, MPI_MIN, world);
  if (lowest == comm->nprocs) return;
  int length = (me == lowest) ? static_cast<int>(message.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, lowest, world);
  std::string text = (me == lowest) ? message : std::string(length, ' ');
  MPI_Bcast(&text[0], length, MPI_CHAR, lowest, world);
  fail(text);
}

void PairMLPot::check_units()
{
  if (strcmp(update->unit_style, "metal") != 0)
    fail(std::string("requires 'units metal' (eV, Angstrom), not 'units ") + update->unit_style + "'");
}

/* ---------------------------------------------------------------------- */

void PairMLPot::settings(int narg, char ** /*arg*/)
{
  if (narg != 0)
    fail("pair_style mlpot takes no arguments; the model goes in 'pair_coeff * * M-lammps.pt ELEMENT...'");
  check_units();
}

/* pair_coeff * * M-lammps.pt El_1 ... El_ntypes */
void PairMLPot::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    fail("usage: pair_coeff * * M-lammps.pt ELEMENT... (one element per atom type)");
  std::vector<std::string> given(arg + 3, arg + narg);
  if (static_cast<int>(given.size()) != ntypes)
    fail("pair_coeff * * " + std::string(arg[2]) + " needs one element per atom type: " +
         std::to_string(ntypes) + " atom type(s), " + std::to_string(given.size()) +
         " element(s) given (" + join(given) + ")");

  auto loaded = std::make_unique<Model>();
  std::string problem;
  try {
    problem = load_model(arg[2], *loaded);
  } catch (const std::exception &e) {
    problem = std::string("cannot load ") + arg[2] + ": " + first_line(e.what());
  }
  fail_if_any(!problem.empty(), problem);

  type_number.assign(ntypes + 1, 0);
  for (int t = 1; t <= ntypes; ++t) {
    const std::string &symbol = given[t - 1];
    if (std::find(loaded->elements.begin(), loaded->elements.end(), symbol) == loaded->elements.end())
      fail("element " + symbol + " (atom type " + std::to_string(t) + ") is not in model " + arg[2] +
           ", which knows " + join(loaded->elements));
    type_number[t] = atomic_number(symbol);
    if (type_number[t] == 0) fail("element " + symbol + " of model " + arg[2] + " is not a chemical symbol");
  }
  model = std::move(loaded);
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) setflag[i][j] = 1;

  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair_style mlpot: {} (mlpot {}, elements {}, r_max {} A, {} interactions, {}), "
                   "{} torch thread(s) per rank\n",
                   model->path, model->mlpot_version, join(model->elements), model->r_max,
                   model->num_interactions, model->dtype_name, at::get_num_threads());
}

void PairMLPot::init_style()
{
  check_units();
  if (!model) fail("no model loaded: use 'pair_coeff * * M-lammps.pt ELEMENT...'");
  if (comm->mode != Comm::SINGLE)
    fail("needs 'comm_modify mode single' (the ghost cutoff is set for all atoms alike)");
  neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
  // Ghosts out to num_interactions * r_max (+ skin, as atoms move between rebuilds) make
  // the energy of the local atoms exact. A larger user cutoff (comm_modify cutoff) is kept.
  const double ghost_cutoff = model->num_interactions * model->r_max + neighbor->skin;
  if (comm->cutghostuser < ghost_cutoff) comm->cutghostuser = ghost_cutoff;
}

double PairMLPot::init_one(int i, int j)
{
  cutghost[i][j] = cutghost[j][i] = model->r_max;    // neighbour lists of ghosts: same cutoff
  return model->r_max;
}

/* ---------------------------------------------------------------------- */

void PairMLPot::build_graph()
{
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  double **x = atom->x;
  const tagint *tag = atom->tag;
  const bool merge_images = atom->tag_enable != 0;
  const double cut2 = model->r_max * model->r_max;
  const int layers = model->num_interactions;

  // 1. pairs closer than r_max (the lists hold r_max + skin)
  neigh_begin.assign(nall, 0);
  neigh_count.assign(nall, 0);
  neigh_index.clear();
  const int nlists = list->inum + list->gnum;
  for (int ii = 0; ii < nlists; ++ii) {
    const int i = list->ilist[ii];
    const int *jlist = list->firstneigh[i];
    const int jnum = list->numneigh[i];
    neigh_begin[i] = static_cast<int>(neigh_index.size());
    for (int jj = 0; jj < jnum; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz < cut2) neigh_index.push_back(j);
    }
    neigh_count[i] = static_cast<int>(neigh_index.size()) - neigh_begin[i];
  }

  // 2. hops from the local atoms, breadth first; `reached` lists atoms in order of hops.
  // Atoms within layers - 1 hops lie within (layers - 1) * r_max of a local atom, so their
  // own neighbour lists are complete.
  hops.assign(nall, INT_MAX);
  reached.clear();
  for (int i = 0; i < nlocal; ++i) {
    hops[i] = 0;
    reached.push_back(i);
  }
  size_t level_begin = 0;
  for (int level = 1; level <= layers; ++level) {
    const size_t level_end = reached.size();
    for (size_t k = level_begin; k < level_end; ++k) {
      const int a = reached[k];
      for (int n = 0; n < neigh_count[a]; ++n) {
        const int j = neigh_index[neigh_begin[a] + n];
        if (hops[j] == INT_MAX) {
          hops[j] = level;
          reached.push_back(j);
        }
      }
    }
    level_begin = level_end;
  }

  // 3. nodes: one per atom (tag), at its image with the fewest hops (a local atom is its own
  // image at hop 0). Every other image of it becomes that node plus a shift. Features of
  // images are equal by periodicity, and the image kept has the complete neighbourhood where
  // its features beyond the embedding are needed, so the graph is exact, and on one rank it
  // is the periodic graph ASE builds. Without atom IDs every ghost stays its own node.
  node_atom.clear();
  atom_node.assign(nall, -1);
  tag_node.clear();
  for (const int i : reached) {
    if (merge_images) {
      const auto found = tag_node.find(tag[i]);
      if (found != tag_node.end()) {
        atom_node[i] = found->second;
        continue;
      }
      tag_node.emplace(tag[i], static_cast<int>(node_atom.size()));
    }
    atom_node[i] = static_cast<int>(node_atom.size());
    node_atom.push_back(i);
  }

  // 4. edges into nodes within layers - 1 hops (the outermost shell only sends)
  edge_sender.clear();
  edge_receiver.clear();
  edge_shifts.clear();
  for (size_t r = 0; r < node_atom.size(); ++r) {
    const int receiver = node_atom[r];
    if (hops[receiver] >= layers) continue;
    for (int n = 0; n < neigh_count[receiver]; ++n) {
      const int j = neigh_index[neigh_begin[receiver] + n];
      const int sender = atom_node[j];
      const double *image = x[node_atom[sender]];
      edge_sender.push_back(sender);
      edge_receiver.push_back(static_cast<int64_t>(r));
      edge_shifts.push_back(x[j][0] - image[0]);    // x_j = x_sender + shift
      edge_shifts.push_back(x[j][1] - image[1]);
      edge_shifts.push_back(x[j][2] - image[2]);
    }
  }
  node_positions.resize(3 * node_atom.size());
  for (size_t n = 0; n < node_atom.size(); ++n)
    for (int d = 0; d < 3; ++d) node_positions[3 * n + d] = x[node_atom[n]][d];
}

void PairMLPot::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const bool own_reverse_comm = (force->newton == 0);    // else LAMMPS sends ghost data back
  double **f = atom->f;

  if (own_reverse_comm) {    // nobody clears ghost forces and per-atom virials with newton off
    for (int i = nlocal; i < nall; ++i) f[i][0] = f[i][1] = f[i][2] = 0.0;
    if (vflag_atom)
      for (int i = nlocal; i < nall; ++i) std::fill(vatom[i], vatom[i] + 6, 0.0);
    if (cvflag_atom)
      for (int i = nlocal; i < nall; ++i) std::fill(cvatom[i], cvatom[i] + 9, 0.0);
  }

  if (nlocal > 0) {
    build_graph();
    const int64_t nodes = static_cast<int64_t>(node_atom.size());
    const int64_t edges = static_cast<int64_t>(edge_sender.size());
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    const auto i64 = torch::TensorOptions().dtype(torch::kInt64);

    std::vector<int64_t> numbers(nodes);
    for (int64_t n = 0; n < nodes; ++n) numbers[n] = type_number[atom->type[node_atom[n]]];
    torch::Tensor positions = torch::from_blob(node_positions.data(), {nodes, 3}, f64).to(model->dtype, false, true);
    torch::Tensor atomic_numbers = torch::from_blob(numbers.data(), {nodes}, i64).clone();
    torch::Tensor edge_index = torch::stack({torch::from_blob(edge_sender.data(), {edges}, i64),
                                             torch::from_blob(edge_receiver.data(), {edges}, i64)});
    torch::Tensor shifts = torch::from_blob(edge_shifts.data(), {edges, 3}, f64).to(model->dtype, false, true);
    torch::Tensor local_mask = torch::zeros({nodes}, torch::TensorOptions().dtype(torch::kBool));
    local_mask.slice(0, 0, nlocal).fill_(true);

    std::unordered_map<std::string, torch::Tensor> out;    // energy, node_energy, forces, virial, atom_virial
    try {
      if (model->package) {
        const std::vector<torch::Tensor> values =
            model->package->run({positions, atomic_numbers, edge_index, shifts, local_mask});
        for (size_t k = 0; k < values.size() && k < model->outputs.size(); ++k) out[model->outputs[k]] = values[k];
      } else {
        const auto dict = model->module.forward({positions, atomic_numbers, edge_index, shifts, local_mask}).toGenericDict();
        for (const auto &item : dict) out[item.key().toStringRef()] = item.value().toTensor();
      }
    } catch (const std::exception &e) {
      error->one(FLERR, "pair_style mlpot: the model failed: " + script_error(e.what()));
    }
    auto result = [&out](const char *key) {
      return out.at(key).to(torch::kFloat64).contiguous();
    };

    const torch::Tensor forces = result("forces");    // [nodes, 3]
    const double *force = forces.data_ptr<double>();
    for (int64_t n = 0; n < nodes; ++n) {
      double *fi = f[node_atom[n]];
      fi[0] += force[3 * n];
      fi[1] += force[3 * n + 1];
      fi[2] += force[3 * n + 2];
    }
    if (eflag_global) eng_vdwl += result("energy").item<double>();
    if (eflag_atom) {
      const torch::Tensor node_energy = result("node_energy");    // [nodes], zero on ghosts
      const double *e = node_energy.data_ptr<double>();
      for (int64_t n = 0; n < nlocal; ++n) eatom[node_atom[n]] += e[n];
    }
    if (vflag_global) {    // W_ab = sum_i r_ia F_ib over local and ghost atoms
      const torch::Tensor w = result("virial");
      const double *v = w.data_ptr<double>();
      virial[0] += v[0];
      virial[1] += v[4];
      virial[2] += v[8];
      virial[3] += 0.5 * (v[1] + v[3]);
      virial[4] += 0.5 * (v[2] + v[6]);
      virial[5] += 0.5 * (v[5] + v[7]);
    }
    if (vflag_atom || cvflag_atom) {
      const torch::Tensor atom_virial = result("atom_virial");    // [nodes, 3, 3]
      const double *w = atom_virial.data_ptr<double>();
      for (int64_t n = 0; n < nodes; ++n) {
        const double *v = w + 9 * n;
        const int a = node_atom[n];
        if (vflag_atom) {
          vatom[a][0] += v[0];
          vatom[a][1] += v[4];
          vatom[a][2] += v[8];
          vatom[a][3] += 0.5 * (v[1] + v[3]);
          vatom[a][4] += 0.5 * (v[2] + v[6]);
          vatom[a][5] += 0.5 * (v[5] + v[7]);
        }
        if (cvflag_atom) {    // xx yy zz xy xz yz yx zx zy
          const int order[9] = {0, 4, 8, 1, 2, 5, 3, 6, 7};
          for (int k = 0; k < 9; ++k) cvatom[a][k] += v[order[k]];
        }
      }
    }
  }

  if (own_reverse_comm) {    // collective: every rank takes part, with or without atoms
    reverse_fields = 1 | (vflag_atom ? 2 : 0) | (cvflag_atom ? 4 : 0);
    comm->reverse_comm(this);
  }
}

/* ---------------------------------------------------------------------- */

int PairMLPot::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; ++i) {
    for (int d = 0; d < 3; ++d) buf[m++] = atom->f[i][d];
    if (reverse_fields & 2)
      for (int d = 0; d < 6; ++d) buf[m++] = vatom[i][d];
    if (reverse_fields & 4)
      for (int d = 0; d < 9; ++d) buf[m++] = cvatom[i][d];
  }
  return m;
}

void PairMLPot::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int i = 0; i < n; ++i) {
    const int j = list[i];
    for (int d = 0; d < 3; ++d) atom->f[j][d] += buf[m++];
    if (reverse_fields & 2)
      for (int d = 0; d < 6; ++d) vatom[j][d] += buf[m++];
    if (reverse_fields & 4)
      for (int d = 0; d < 9; ++d) cvatom[j][d] += buf[m++];
  }
}

double PairMLPot::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += sizeof(int) * (neigh_begin.capacity() + neigh_count.capacity() + neigh_index.capacity() +
                          hops.capacity() + reached.capacity() + node_atom.capacity() + atom_node.capacity());
  bytes += (sizeof(tagint) + 2 * sizeof(int)) * tag_node.size();
  bytes += sizeof(int64_t) * (edge_sender.capacity() + edge_receiver.capacity());
  bytes += sizeof(double) * (node_positions.capacity() + edge_shifts.capacity());
  return bytes;
}
