// msconv data: info, check, pack, pack-pairs, synth.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "msconv/data/dataset.h"
#include "msconv/data/decode.h"
#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/data/recordio.h"
#include "msconv/data/synth.h"
#include "msconv/error.h"

namespace fs = std::filesystem;

namespace msconv::cli {
namespace {

const char* kUsage =
    "usage: msconv data COMMAND ...\n"
    "  info PATH [--json]                 kind, identities, images, pairs, image size\n"
    "  check PATH [--skip-bad]            decode every image; report the bad ones\n"
    "  pack FOLDER -o PREFIX [--skip-bad] identity folder -> PREFIX.rec + PREFIX.idx\n"
    "  pack-pairs PAIRS.txt -o OUT.bin [--root DIR]   'image image 0|1' lines -> .bin\n"
    "        (image paths relative to the list file's folder, or to --root)\n"
    "  synth -o DIR [--identities N] [--images-per-id K] [--pairs P] [--seed S]\n"
    "        [--format folder|recordio] [--sheet PNG]  synthetic faces + val.bin\n"
    "  synth-ijb -o DIR [--identities N] [--templates-per-id T] [--seed S] [--name ijbc]\n"
    "        an IJB-B/C-format set (loose crops, landmarks, templates, pairs)\n";

bool isPairsFile(const std::string& p) {
  return fs::path(p).extension() == ".bin";
}
bool isIjb(const std::string& p) {
  return fs::is_directory(fs::path(p) / "meta");
}

int info(const Argv& argv) {
  Args args(argv, {{"--json", false, "print JSON"}}, "msconv data info PATH [--json]");
  if (args.positionals().size() != 1) throw Error("data info wants one PATH");
  const std::string path = args.positionals()[0];
  if (!fs::exists(path) && !fs::exists(path + ".rec"))
    throw Error(path + ": no such file or folder");
  nlohmann::json j;
  j["path"] = path;
  std::string first_image;
  if (isPairsFile(path)) {
    const auto set = data::readPairsBin(path);
    int same = 0;
    for (auto s : set.issame) same += s;
    j.update({{"kind", "pairs"},
              {"identities", 0},
              {"images", set.images.size()},
              {"pairs", set.pairs()},
              {"genuine_pairs", same}});
    first_image = set.images.front();
  } else if (isIjb(path)) {
    const auto set = data::readIjb(path);
    j.update({{"kind", "ijb"},
              {"set", set.name},
              {"identities", set.templates()},
              {"images", set.faces.size()},
              {"pairs", set.pairs.size()},
              {"templates", set.templates()},
              {"medias", set.medias()}});
    if (!set.faces.empty() && fs::exists(set.imagePath(set.faces[0])))
      first_image = data::readFile(set.imagePath(set.faces[0]));
  } else {
    const auto ds = data::openTrainingSet(path);
    j.update({{"kind", ds->kind()},
              {"identities", ds->numClasses()},
              {"images", ds->size()},
              {"pairs", 0}});
    first_image = ds->encoded(0);
  }
  if (!first_image.empty()) {
    const cv::Mat raw(1, static_cast<int>(first_image.size()), CV_8UC1, first_image.data());
    const cv::Mat img = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
    if (!img.empty()) j["image_size"] = {img.cols, img.rows};
  }
  if (args.flag("--json")) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "kind        " << j["kind"].get<std::string>() << "\n"
              << "identities  " << j["identities"] << "\n"
              << "images      " << j["images"] << "\n"
              << "pairs       " << j["pairs"] << "\n";
    if (j.contains("image_size"))
      std::cout << "image size  " << j["image_size"][0] << "x" << j["image_size"][1] << "\n";
  }
  return 0;
}

int check(const Argv& argv) {
  Args args(argv, {{"--skip-bad", false, "keep going past bad images, report how many"}},
            "msconv data check PATH [--skip-bad]");
  if (args.positionals().size() != 1) throw Error("data check wants one PATH");
  const std::string path = args.positionals()[0];
  const bool skip = args.flag("--skip-bad");
  int64_t bad = 0, good = 0;
  auto visit = [&](const std::function<std::string()>& bytes, const std::string& where) {
    try {
      data::decodeFace(bytes(), where);
      ++good;
    } catch (const Error& e) {
      if (!skip) throw;
      std::cerr << "bad: " << e.what() << "\n";
      ++bad;
    }
  };
  if (isPairsFile(path)) {
    const auto set = data::readPairsBin(path);
    for (size_t i = 0; i < set.images.size(); ++i)
      visit([&] { return set.images[i]; }, path + " image " + std::to_string(i));
  } else {
    const auto ds = data::openTrainingSet(path);
    for (size_t i = 0; i < ds->size(); ++i) visit([&] { return ds->encoded(i); }, ds->describe(i));
  }
  std::cout << good << " images decoded, " << bad << " bad" << (bad ? " (skipped)" : "") << "\n";
  return 0;
}

int pack(const Argv& argv) {
  Args args(argv,
            {{"--output", true, "output prefix", "-o"},
             {"--skip-bad", false, "leave out images that do not decode"}},
            "msconv data pack FOLDER -o PREFIX [--skip-bad]");
  if (args.positionals().size() != 1) throw Error("data pack wants one FOLDER");
  const auto ds = data::openFolderDataset(args.positionals()[0]);
  const std::string prefix = args.required("--output");
  // insightface layout: record 0 = [first identity key, end identity key), images 1..N,
  // identity records N+1..N+C holding each identity's [first image key, end image key).
  std::vector<std::string> images;
  std::vector<int> labels;
  int64_t bad = 0;
  for (size_t i = 0; i < ds->size(); ++i) {
    std::string bytes = ds->encoded(i);
    try {
      data::decodeFace(bytes, ds->describe(i));
    } catch (const Error& e) {
      if (!args.flag("--skip-bad")) throw;
      std::cerr << "skipped: " << e.what() << "\n";
      ++bad;
      continue;
    }
    images.push_back(std::move(bytes));
    labels.push_back(ds->label(i));
  }
  const int64_t n = static_cast<int64_t>(images.size());
  std::vector<int64_t> first(ds->numClasses(), -1), end(ds->numClasses(), -1);
  for (int64_t i = 0; i < n; ++i) {
    if (first[labels[i]] < 0) first[labels[i]] = i + 1;
    end[labels[i]] = i + 2;
  }
  std::vector<int> kept;  // identities with at least one image left
  for (int c = 0; c < ds->numClasses(); ++c)
    if (first[c] > 0) kept.push_back(c);
  std::vector<int> relabel(ds->numClasses(), -1);
  for (size_t k = 0; k < kept.size(); ++k) relabel[kept[k]] = static_cast<int>(k);
  data::RecordWriter w(prefix);
  data::IRHeader h0;
  h0.labels = {static_cast<float>(n + 1), static_cast<float>(n + 1 + kept.size())};
  w.write(0, data::packRecord(h0, ""));
  for (int64_t i = 0; i < n; ++i) {
    data::IRHeader h;
    h.label = static_cast<float>(relabel[labels[i]]);
    w.write(static_cast<uint64_t>(i + 1), data::packRecord(h, images[i]));
  }
  for (size_t k = 0; k < kept.size(); ++k) {
    data::IRHeader h;
    h.labels = {static_cast<float>(first[kept[k]]), static_cast<float>(end[kept[k]])};
    w.write(static_cast<uint64_t>(n + 1 + k), data::packRecord(h, ""));
  }
  w.finish();
  std::cout << prefix << ".rec: " << n << " images, " << kept.size() << " identities";
  if (bad) std::cout << ", " << bad << " bad images skipped";
  std::cout << "\n";
  return 0;
}

int packPairs(const Argv& argv) {
  Args args(argv,
            {{"--output", true, "output .bin", "-o"},
             {"--root", true,
              "folder the image paths are relative to (default: the list file's folder)"}},
            "msconv data pack-pairs PAIRS.txt -o OUT.bin [--root DIR]\n"
            "  PAIRS.txt: one pair per line, 'IMAGE IMAGE 1' (same identity) or '... 0'; image\n"
            "  paths are relative to the list file's folder unless --root names another");
  if (args.positionals().size() != 1) throw Error("data pack-pairs wants one PAIRS file");
  const std::string list = args.positionals()[0];
  const std::string root = args.value("--root").value_or(fs::path(list).parent_path().string());
  std::ifstream in(list);
  if (!in) throw Error(list + ": cannot open pairs list");
  data::PairSet set;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    std::istringstream ss(line);
    std::string a, b, l;
    if (!(ss >> a)) continue;
    if (!(ss >> b >> l) || (l != "0" && l != "1"))
      throw Error(list + ":" + std::to_string(no) + ": expected 'image image 0|1'");
    for (const auto& img : {a, b}) {
      const std::string p = fs::path(img).is_absolute() ? img : (fs::path(root) / img).string();
      std::string bytes = data::readFile(p);
      data::decodeFace(bytes, p);
      set.images.push_back(std::move(bytes));
    }
    set.issame.push_back(l == "1");
  }
  if (set.issame.empty()) throw Error(list + ": no pairs");
  data::writePairsBin(args.required("--output"), set);
  std::cout << args.required("--output") << ": " << set.pairs() << " pairs\n";
  return 0;
}

int synth(const Argv& argv) {
  Args args(argv,
            {{"--output", true, "output folder", "-o"},
             {"--identities", true, "training identities (200)"},
             {"--images-per-id", true, "images per identity (40)"},
             {"--pairs", true, "verification pairs from held-out identities (1000)"},
             {"--val-identities", true, "held-out identities (max(20, identities/4))"},
             {"--seed", true, "seed (1)"},
             {"--format", true, "folder or recordio (folder)"},
             {"--threads", true, "generator threads (all cores)"},
             {"--sheet", true, "also write a contact sheet PNG (8 identities x 8 images)"}},
            "msconv data synth -o DIR [options]");
  data::SynthOptions o;
  o.identities = args.integer("--identities", o.identities);
  o.images_per_id = args.integer("--images-per-id", o.images_per_id);
  o.pairs = args.integer("--pairs", o.pairs);
  o.val_identities = args.integer("--val-identities", 0);
  o.seed = static_cast<uint64_t>(args.integer("--seed", 1));
  o.format = args.value("--format").value_or("folder");
  o.threads = args.integer("--threads", 0);
  const std::string out = args.required("--output");
  const auto rep = data::generateSyntheticFaces(out, o);
  if (auto sheet = args.value("--sheet"))
    cv::imwrite(*sheet, data::syntheticContactSheet(o.seed, 8, 8));
  std::cout << rep.train_path << ": " << rep.train_images << " images of " << rep.identities
            << " identities\n";
  if (!rep.val_path.empty()) std::cout << rep.val_path << ": " << rep.val_pairs << " pairs\n";
  std::cerr << "generated in " << rep.seconds << " s ("
            << static_cast<int64_t>((rep.train_images + 2 * rep.val_pairs) / rep.seconds)
            << " images/s)\n";
  return 0;
}

int synthIjb(const Argv& argv) {
  Args args(argv,
            {{"--output", true, "output folder (meta/ and loose_crop/ go inside)", "-o"},
             {"--identities", true, "held-out identities (30)"},
             {"--templates-per-id", true, "templates per identity (3)"},
             {"--medias-per-template", true, "medias per template (2)"},
             {"--images-per-media", true, "images per media (2)"},
             {"--impostors-per-template", true, "impostor pairs per template (12)"},
             {"--name", true, "set name in the metadata file names (ijbc)"},
             {"--seed", true, "seed (1)"}},
            "msconv data synth-ijb -o DIR [options]");
  data::SynthIjbOptions o;
  o.identities = args.integer("--identities", o.identities);
  o.templates_per_id = args.integer("--templates-per-id", o.templates_per_id);
  o.medias_per_template = args.integer("--medias-per-template", o.medias_per_template);
  o.images_per_media = args.integer("--images-per-media", o.images_per_media);
  o.impostors_per_template = args.integer("--impostors-per-template", o.impostors_per_template);
  o.name = args.value("--name").value_or("ijbc");
  o.seed = static_cast<uint64_t>(args.integer("--seed", 1));
  const std::string out = args.required("--output");
  const auto r = data::generateSyntheticIjb(out, o);
  std::cout << out << ": " << r.images << " images, " << r.templates << " templates, " << r.pairs
            << " pairs (" << r.genuine << " genuine)\n";
  return 0;
}

}  // namespace

int cmdData(const Argv& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << kUsage;
    return argv.empty() ? 2 : 0;
  }
  const Argv rest(argv.begin() + 1, argv.end());
  const std::string& sub = argv[0];
  if (sub == "info") return info(rest);
  if (sub == "check") return check(rest);
  if (sub == "pack") return pack(rest);
  if (sub == "pack-pairs") return packPairs(rest);
  if (sub == "synth") return synth(rest);
  if (sub == "synth-ijb") return synthIjb(rest);
  throw Error("unknown data command '" + sub +
              "' (info, check, pack, pack-pairs, synth, synth-ijb)");
}

}  // namespace msconv::cli
