// The MSConv paper's Table 8 complexity column for each model it compares, with the reading of
// "we used ResNet50 as the backbone" that MSConv Lab builds for it (the paper gives no code for
// its peers). Plain data, free of LibTorch; `msconv info --paper` measures each beside it.
#pragma once

#include <string>
#include <vector>

namespace msconv::nn {

struct PaperModel {
  std::string model;          // the paper's row name
  std::string arch, op;       // what MSConv Lab builds for it
  double paper_params_m = 0;  // Table 8 "FLOPs(M)" column: millions of parameters (swapped)
  double paper_gmacs = 0;     // Table 8 "#Param(G)" column: GMACs at 112 x 112 (swapped)
  std::string reading;        // how the row is read, and why ours differs where it does
};

const std::vector<PaperModel>& paperTable8();

}  // namespace msconv::nn
