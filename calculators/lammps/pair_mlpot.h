/* pair_style mlpot: an mlpot potential exported with `mlpot export --format lammps` (TorchScript,
   *.pt) or `mlpot export --format aoti` (AOTInductor package, *.pt2; chosen by the suffix).

     plugin load /abs/path/libmlpot_pair.so
     pair_style  mlpot
     pair_coeff  * * M-lammps.pt Cu Au        (one element per atom type; or M.pt2)

   Each rank hands its local atoms and the ghost atoms out to num_interactions * r_max to the
   TorchScript module as one graph (ordered pairs closer than r_max; periodic images of one
   atom merged into one node with shifts; ghosts marked). The module returns the energy of the
   local atoms and the forces on every node; ghost forces go back to their owners by reverse
   communication (LAMMPS's own with newton on, this style's with newton off). Units must be
   metal (eV, Angstrom).

   The header keeps torch out of LAMMPS's translation units: the module lives in an opaque
   struct defined in pair_mlpot.cpp. */

#ifndef MLPOT_PAIR_MLPOT_H
#define MLPOT_PAIR_MLPOT_H

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace LAMMPS_NS {

class PairMLPot : public Pair {
 public:
  explicit PairMLPot(class LAMMPS *);
  ~PairMLPot() override;

  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;
  double memory_usage() override;

  struct Model;    // the loaded TorchScript module or AOTInductor package and its metadata (pair_mlpot.cpp)

 protected:
  void allocate();
  void check_units();
  [[noreturn]] void fail(const std::string &message);
  void fail_if_any(bool failed_here, const std::string &message);
  void build_graph();
  void reverse_comm_ghosts();

  std::unique_ptr<Model> model;
  std::vector<int64_t> type_number;    // atomic number of each LAMMPS type (index 1..ntypes)

  // per-step work arrays, reused between steps
  std::vector<int> neigh_begin;      // pairs closer than r_max: the senders of atom i are
  std::vector<int> neigh_count;      //   neigh_index[neigh_begin[i] + k], k < neigh_count[i]
  std::vector<int> neigh_index;
  std::vector<int> hops;             // graph distance of each atom from the local atoms
  std::vector<int> reached;          // atoms within num_interactions hops, fewest hops first
  std::vector<int> node_atom;        // LAMMPS index of each graph node (locals first)
  std::vector<int> atom_node;        // graph node of each LAMMPS atom (of its image), or -1
  std::unordered_map<tagint, int> tag_node;    // atom ID -> its graph node
  std::vector<int64_t> edge_sender, edge_receiver;
  std::vector<double> edge_shifts;    // [E, 3]: x_j - x_(node of j) for each edge's sender j
  std::vector<double> node_positions;
  int reverse_fields;    // what pack_reverse_comm sends: 1 forces, 2 virial, 4 centroid virial
};

}    // namespace LAMMPS_NS

#endif
