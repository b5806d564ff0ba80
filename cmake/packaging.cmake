# Installation and the Debian package (`./lab package`, CPack's DEB generator).
#   usr/bin                 msconv, msconv-lab, msconv-scope (the project's libraries are static)
#   usr/share/applications  desktop entries of the workbench and of msconv-scope
#   usr/share/icons/hicolor an SVG and PNG icon set of each
#   usr/share/metainfo      the AppStream description
#   usr/share/man/man1      manual pages generated from each program's --help (help2man)
# `./lab package` builds everything, then runs cpack.
include(GNUInstallDirs)

set(MSCONV_RESOURCES ${PROJECT_SOURCE_DIR}/resources)
set(MSCONV_APPS)
if(MSCONV_GUI)
  list(APPEND MSCONV_APPS io.github.msconvlab.Lab)
endif()
if(MSCONV_SCOPE)
  list(APPEND MSCONV_APPS io.github.msconvlab.Scope)
endif()
foreach(app IN LISTS MSCONV_APPS)
  install(FILES ${MSCONV_RESOURCES}/${app}.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
  install(FILES ${MSCONV_RESOURCES}/icons/${app}.svg
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
  foreach(size 48 64 128 256)
    install(FILES ${MSCONV_RESOURCES}/icons/${size}x${size}/${app}.png
            DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/${size}x${size}/apps)
  endforeach()
endforeach()
if(MSCONV_GUI)
  install(FILES ${MSCONV_RESOURCES}/io.github.msconvlab.Lab.metainfo.xml
          DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
endif()

# Manual pages: help2man runs each program's --help and --version (msconv-lab answers both
# without a display), as part of the default build where help2man is installed (./lab installs
# it); without it there are no man pages to install and `msconv_man` says why.
find_program(MSCONV_HELP2MAN help2man)
set(MSCONV_MAN_PROGRAMS "msconv\;the MSConv Lab command-line tool")
if(MSCONV_GUI)
  list(APPEND MSCONV_MAN_PROGRAMS "msconv-lab\;the MSConv Lab workbench")
endif()
if(MSCONV_SCOPE)
  list(APPEND MSCONV_MAN_PROGRAMS "msconv-scope\;live training telemetry of MSConv Lab runs")
endif()
set(man_pages)
foreach(entry IN LISTS MSCONV_MAN_PROGRAMS)
  list(GET entry 0 program)
  list(GET entry 1 what)
  set(page ${CMAKE_BINARY_DIR}/man/${program}.1)
  add_custom_command(
    OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen
            ${MSCONV_HELP2MAN} --no-info --no-discard-stderr --section 1 --name "${what}"
            --output ${page} $<TARGET_FILE:${program}>
    DEPENDS ${program}
    COMMENT "man page of ${program}" VERBATIM)
  list(APPEND man_pages ${page})
  if(MSCONV_HELP2MAN)
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
endforeach()
if(MSCONV_HELP2MAN)
  add_custom_target(msconv_man ALL DEPENDS ${man_pages})
else()
  add_custom_target(msconv_man
    COMMAND ${CMAKE_COMMAND} -E echo "help2man is not installed (Debian: help2man)"
    COMMAND ${CMAKE_COMMAND} -E false)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME msconv-lab)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "MSConv Lab <msconv-lab@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "workbench for feature-fusion operators in face recognition")
set(CPACK_PACKAGE_DESCRIPTION
    "MSConv (Multiplicative and Subtractive Convolution) and its peers in LibTorch: training,\n\
evaluation (LFW-style .bin sets, IJB-B/C), feature maps and Grad-CAM across layers and models.\n\
msconv is the command-line tool, msconv-lab the Qt 6 workbench and msconv-scope the live\n\
telemetry viewer.")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps
# LibTorch finds BLAS through Debian's alternatives: the reference BLAS is slow.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # msconv-lab_VERSION_amd64.deb
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR})
set(CPACK_STRIP_FILES ON)
include(CPack)
