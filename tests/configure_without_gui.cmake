# ctest configure_without_gui: msconv, its core and its tests configure with Qt, QCustomPlot,
# Dear ImGui and GLFW unavailable (as on a headless training box without their dev packages),
# and nothing they build refers to them. cmake -DSOURCE_DIR=... -DBUILD_DIR=... -P this file.
file(REMOVE_RECURSE ${BUILD_DIR})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR} -G Ninja -DCMAKE_BUILD_TYPE=Release
          -DMSCONV_GUI=OFF -DMSCONV_SCOPE=OFF -DMSCONV_BUILD_BENCH=OFF -DMSCONV_CUDA_KERNELS=OFF
          -DCMAKE_DISABLE_FIND_PACKAGE_Qt6=ON -DCMAKE_DISABLE_FIND_PACKAGE_QCustomPlotQt6=ON
          -DCMAKE_DISABLE_FIND_PACKAGE_glfw3=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring without the GUI failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ninja -C ${BUILD_DIR} -t targets all OUTPUT_VARIABLE targets)
foreach(want "bin/msconv:" "bin/msconv_tests:")
  string(FIND "${targets}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "no ${want} target in the build without the GUI")
  endif()
endforeach()
foreach(unwanted "msconv-lab" "msconv-scope" "libmsconv_ui.a" "msconv_ui_tests")
  string(FIND "${targets}" "${unwanted}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "the build without the GUI still has ${unwanted}")
  endif()
endforeach()
execute_process(COMMAND ninja -C ${BUILD_DIR} -t commands bin/msconv bin/msconv_tests
                OUTPUT_VARIABLE commands)
string(TOLOWER "${commands}" lower)
foreach(word "qt6" "qcustomplot" "imgui" "glfw")
  string(FIND "${lower}" "${word}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "msconv or msconv_tests refers to ${word} in the build without the GUI")
  endif()
endforeach()
message(STATUS "configured without the GUI: msconv and msconv_tests, no Qt / ImGui / GLFW")
file(REMOVE_RECURSE ${BUILD_DIR})
