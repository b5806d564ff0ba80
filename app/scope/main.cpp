// msconv-scope: a live per-layer telemetry viewer (Dear ImGui, GLFW, OpenGL 3). It follows a
// training run's telemetry.bin as it grows, or replays a finished one: a layer table with
// sparklines, gate histograms over time for MSConv / SKConv / SCConv layers, a gradient-norm heat
// strip across layers x records, pause and scrub. It redraws only when the file grew or the user
// did something.
//
// usage: msconv-scope RUN_DIR | TELEMETRY_FILE | WORKSPACE [--screenshot PNG [--frames N]]
//                     [--size WxH]
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "msconv/error.h"
#include "msconv/telemetry/telemetry.h"

namespace fs = std::filesystem;
using msconv::telemetry::ReadResult;

namespace {

// The telemetry file a path names: the file itself, RUN/telemetry.bin, or in a workspace the run
// whose telemetry changed last.
std::string resolve(const std::string& arg) {
  const fs::path p(arg);
  if (fs::is_regular_file(p)) return p.string();
  if (fs::is_directory(p / "runs")) {
    fs::path best;
    fs::file_time_type when{};
    for (const auto& e : fs::directory_iterator(p / "runs")) {
      const auto t = e.path() / "telemetry.bin";
      if (fs::is_regular_file(t) && (best.empty() || fs::last_write_time(t) > when))
        best = t, when = fs::last_write_time(t);
    }
    if (!best.empty()) return best.string();
  }
  return (p / "telemetry.bin").string();
}

// A perceptual ramp (viridis-like) for v in [0, 1].
ImU32 ramp(float v) {
  v = std::clamp(v, 0.f, 1.f);
  static const float stops[5][3] = {{0.267f, 0.005f, 0.329f},
                                    {0.229f, 0.322f, 0.545f},
                                    {0.128f, 0.567f, 0.551f},
                                    {0.369f, 0.789f, 0.383f},
                                    {0.993f, 0.906f, 0.144f}};
  const float x = v * 4.f;
  const int i = std::min(3, static_cast<int>(x));
  const float t = x - i;
  float c[3];
  for (int k = 0; k < 3; ++k) c[k] = stops[i][k] + (stops[i + 1][k] - stops[i][k]) * t;
  return IM_COL32(static_cast<int>(c[0] * 255), static_cast<int>(c[1] * 255),
                  static_cast<int>(c[2] * 255), 255);
}

struct Viewer {
  std::string path;
  ReadResult data;
  bool loaded = false;
  std::string message;  // why there is nothing (yet) to show
  bool paused = false;
  int selected = -1;  // record shown in the table; -1: the latest
  uint64_t seen_size = 0;

  // Returns true when something new arrived.
  bool poll() {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) {
      message = "no telemetry at " + path + " yet (waiting for the run to write it)";
      return !loaded ? false : (loaded = false, true);
    }
    if (loaded && size == seen_size) return false;
    seen_size = size;
    try {
      if (!loaded) {
        data = msconv::telemetry::read(path);
        loaded = true;
      } else if (size < data.bytes) {  // rewritten: start over
        data = msconv::telemetry::read(path);
      } else {
        msconv::telemetry::readMore(path, data);
      }
      message.clear();
    } catch (const msconv::Error& e) {
      loaded = false;
      message = e.what();
    }
    return true;
  }

  void heatStrip(const char* id, const std::vector<std::string>& rows, int n_cols,
                 const std::function<float(int row, int col)>& value, float height_per_row) {
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float label_w = 110.f;
    const float w = std::max(50.f, avail.x - label_w), h = rows.size() * height_per_row;
    ImGui::BeginChild(id, ImVec2(avail.x, h + 4), false, ImGuiWindowFlags_NoScrollbar);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 o = ImGui::GetCursorScreenPos();
    const int cols = std::max(1, n_cols);
    const float cw = w / cols;
    for (size_t r = 0; r < rows.size(); ++r) {
      dl->AddText(ImVec2(o.x, o.y + r * height_per_row), IM_COL32(220, 220, 220, 255),
                  rows[r].c_str());
      for (int c = 0; c < n_cols; ++c) {
        const ImVec2 a(o.x + label_w + c * cw, o.y + r * height_per_row);
        const float gap = height_per_row >= 8 ? 1.f : 0.f;  // row separation for labelled rows
        dl->AddRectFilled(a, ImVec2(a.x + std::max(cw, 1.f), a.y + height_per_row - gap),
                          ramp(value(static_cast<int>(r), c)));
      }
    }
    if (selected >= 0 && selected < n_cols) {  // the scrubbed record
      const float x = o.x + label_w + (selected + 0.5f) * cw;
      dl->AddLine(ImVec2(x, o.y), ImVec2(x, o.y + h), IM_COL32(255, 80, 80, 255), 1.5f);
    }
    ImGui::EndChild();
  }

  void draw(int width, int height) {
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(ImVec2(static_cast<float>(width), static_cast<float>(height)));
    ImGui::Begin("msconv-scope", nullptr,
                 ImGuiWindowFlags_NoResize | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoCollapse |
                     ImGuiWindowFlags_NoTitleBar);
    ImGui::Text("msconv-scope  %s", path.c_str());
    if (!loaded) {
      ImGui::Separator();
      ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "%s", message.c_str());
      ImGui::End();
      return;
    }
    const auto& h = data.header;
    const int n = static_cast<int>(data.records.size());
    ImGui::SameLine();
    ImGui::TextDisabled("  %d records, one every %d steps", n, h.every);
    if (!data.problem.empty())
      ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "telemetry stops early: %s (showing %d records)",
                         data.problem.c_str(), n);
    if (n == 0) {
      ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1),
                         "no records yet: the run has not reached its "
                         "first telemetry step");
      ImGui::End();
      return;
    }
    if (ImGui::Button(paused ? "Follow" : "Pause")) {
      paused = !paused;
      if (!paused) selected = -1;
    }
    ImGui::SameLine();
    int shown = selected < 0 || !paused ? n - 1 : std::min(selected, n - 1);
    ImGui::SetNextItemWidth(std::max(200.f, ImGui::GetContentRegionAvail().x - 260));
    if (ImGui::SliderInt("record", &shown, 0, n - 1)) {
      paused = true;
      selected = shown;
    }
    const auto& rec = data.records[shown];
    ImGui::SameLine();
    ImGui::Text("step %lld  loss %.4f", static_cast<long long>(rec.step), rec.loss);

    // Layer table with sparklines.
    if (ImGui::BeginTable("layers", 7,
                          ImGuiTableFlags_RowBg | ImGuiTableFlags_Borders |
                              ImGuiTableFlags_ScrollY | ImGuiTableFlags_SizingStretchProp,
                          ImVec2(0, height * 0.42f))) {
      ImGui::TableSetupScrollFreeze(0, 1);
      for (const char* c :
           {"layer", "mean", "std", "|max|", "dead %", "std over time", "grad norm over time"})
        ImGui::TableSetupColumn(c);
      ImGui::TableHeadersRow();
      std::vector<float> series(n);
      for (size_t l = 0; l < h.layers.size(); ++l) {
        const auto& s = rec.layers[l];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(h.layers[l].c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%.3g", s.mean);
        ImGui::TableNextColumn();
        ImGui::Text("%.3g", s.std);
        ImGui::TableNextColumn();
        ImGui::Text("%.3g", s.absmax);
        ImGui::TableNextColumn();
        if (s.dead > 0.1f)
          ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%.1f", 100 * s.dead);
        else
          ImGui::Text("%.1f", 100 * s.dead);
        ImGui::TableNextColumn();
        for (int i = 0; i < n; ++i) series[i] = data.records[i].layers[l].std;
        ImGui::PushID(static_cast<int>(l));
        ImGui::PlotLines("##std", series.data(), n, 0, nullptr, FLT_MAX, FLT_MAX,
                         ImVec2(ImGui::GetContentRegionAvail().x, 18));
        ImGui::TableNextColumn();
        // The unit's gradient group, when it has one.
        const auto g = std::find(h.groups.begin(), h.groups.end(), h.layers[l]);
        if (g != h.groups.end()) {
          const size_t gi = g - h.groups.begin();
          for (int i = 0; i < n; ++i) series[i] = data.records[i].grad_norms[gi];
          ImGui::PlotLines("##grad", series.data(), n, 0, nullptr, FLT_MAX, FLT_MAX,
                           ImVec2(ImGui::GetContentRegionAvail().x, 18));
        }
        ImGui::PopID();
      }
      ImGui::EndTable();
    }

    const int cols = std::min(n, 400);  // records per heat-strip column, at most 400 columns
    auto recordAt = [&](int c) { return static_cast<int>(static_cast<int64_t>(c) * n / cols); };
    // Gradient norms: log10, scaled over the whole strip.
    float lo = 1e30f, hi = -1e30f;
    for (const auto& r : data.records)
      for (float v : r.grad_norms) {
        const float l = std::log10(std::max(v, 1e-12f));
        lo = std::min(lo, l), hi = std::max(hi, l);
      }
    ImGui::Text("gradient norm, log10 %.2f .. %.2f (rows: layers; columns: records)", lo, hi);
    heatStrip(
        "grad", h.groups, cols,
        [&](int r, int c) {
          const float v = std::log10(std::max(data.records[recordAt(c)].grad_norms[r], 1e-12f));
          return hi > lo ? (v - lo) / (hi - lo) : 0.f;
        },
        12.f);
    if (!h.gates.empty()) {
      ImGui::Text(
          "gate c over time: per layer, %d bins from 0 (bottom) to 1 (top); brightness = "
          "share of channels (scaled to the layer's largest bin)",
          h.bins);
      ImGui::BeginChild("gates", ImVec2(0, 0), false);
      for (size_t gl = 0; gl < h.gates.size(); ++gl) {
        std::vector<std::string> bins(h.bins);
        bins[0] = h.gates[gl];
        float top = 1e-6f;
        for (const auto& r : data.records)
          for (float share : r.gates[gl]) top = std::max(top, share);
        heatStrip(
            ("gate" + std::to_string(gl)).c_str(), bins, cols,
            [&](int b, int c) { return data.records[recordAt(c)].gates[gl][h.bins - 1 - b] / top; },
            4.f);
      }
      ImGui::EndChild();
    }
    ImGui::End();
  }
};

void screenshot(const std::string& path, int w, int h) {
  std::vector<unsigned char> px(static_cast<size_t>(w) * h * 4);
  glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
  std::vector<unsigned char> flipped(px.size());
  for (int y = 0; y < h; ++y)
    std::memcpy(&flipped[static_cast<size_t>(y) * w * 4],
                &px[static_cast<size_t>(h - 1 - y) * w * 4], static_cast<size_t>(w) * 4);
  const std::string tmp = path + ".tmp.png";
  if (!stbi_write_png(tmp.c_str(), w, h, 4, flipped.data(), w * 4))
    throw msconv::Error(path + ": cannot write the screenshot");
  fs::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, shot;
  int frames = 3, width = 1280, height = 860;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "msconv-scope: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--screenshot") {
      shot = next();
    } else if (a == "--frames") {
      frames = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--size") {
      if (std::sscanf(next().c_str(), "%dx%d", &width, &height) != 2 || width < 200 ||
          height < 200) {
        std::fprintf(stderr, "msconv-scope: --size takes WxH (at least 200x200)\n");
        return 2;
      }
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: msconv-scope [RUN_DIR | TELEMETRY_FILE | WORKSPACE] [--screenshot PNG "
          "[--frames N]] [--size WxH]\n"
          "       msconv-scope --help | --version\n\n"
          "Follows a training run's per-layer telemetry (activation and gradient statistics)\n"
          "live, or replays it. A workspace (default ./runs, as msconv's) opens its most\n"
          "recently active run.\n\n"
          "  --screenshot PNG  draw N frames (--frames, default 3), save the window, exit\n"
          "  --frames N        frames before the screenshot\n"
          "  --size WxH        window size (default 1280x860, at least 200x200)\n");
      return 0;
    } else if (a == "--version") {
      std::printf("msconv-scope %s\n", MSCONV_VERSION);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "msconv-scope: unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    } else {
      target = a;
    }
  }
  if (target.empty()) target = "runs";  // the default workspace of msconv and msconv-lab
  if (!glfwInit()) {
    std::fprintf(stderr,
                 "msconv-scope: no display (GLFW could not start; set DISPLAY or use "
                 "xvfb-run)\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  GLFWwindow* window = glfwCreateWindow(width, height, "msconv-scope", nullptr, nullptr);
  if (!window) {
    std::fprintf(stderr, "msconv-scope: cannot open an OpenGL 3.3 window\n");
    glfwTerminate();
    return 1;
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(1);
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGui::GetIO().IniFilename = nullptr;
  ImGui::StyleColorsDark();
  ImGui_ImplGlfw_InitForOpenGL(window, true);
  ImGui_ImplOpenGL3_Init("#version 330");

  Viewer v;
  v.path = resolve(target);
  v.poll();
  int rendered = 0, dirty = 2;
  double last_poll = glfwGetTime();
  int status = 0;
  while (!glfwWindowShouldClose(window)) {
    if (shot.empty()) {
      const double before = glfwGetTime();
      glfwWaitEventsTimeout(0.5);
      if (glfwGetTime() - before < 0.45) dirty = 2;  // an event: a couple of frames for ImGui
    } else {
      glfwPollEvents();
    }
    if (glfwGetTime() - last_poll >= 0.5 || !shot.empty()) {
      last_poll = glfwGetTime();
      if (!v.paused && v.poll()) dirty = 2;
    }
    if (dirty == 0 && shot.empty()) continue;  // nothing changed: no redraw
    dirty = std::max(0, dirty - 1);
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    int w = 0, h = 0;
    glfwGetFramebufferSize(window, &w, &h);
    v.draw(w, h);
    ImGui::Render();
    glViewport(0, 0, w, h);
    glClearColor(0.1f, 0.1f, 0.12f, 1.f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (!shot.empty() && ++rendered >= frames) {
      try {
        screenshot(shot, w, h);
        std::printf("%s\n", shot.c_str());
      } catch (const msconv::Error& e) {
        std::fprintf(stderr, "msconv-scope: %s\n", e.what());
        status = 1;
      }
      break;
    }
    glfwSwapBuffers(window);
  }
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(window);
  glfwTerminate();
  return status;
}
