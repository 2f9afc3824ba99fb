# OpenCV's core, imgproc and (unless CORL_WITH_IMGCODECS is off) imgcodecs as one target,
# corl::opencv. Debian ships OpenCVConfig.cmake only with the full libopencv-dev; the -dev
# packages the project needs carry headers and libraries without it, so fall back to finding
# them directly.
set(CORL_OPENCV_PARTS core imgproc)
if(CORL_WITH_IMGCODECS)
  list(APPEND CORL_OPENCV_PARTS imgcodecs)
endif()
find_package(OpenCV QUIET COMPONENTS ${CORL_OPENCV_PARTS})
add_library(corl::opencv INTERFACE IMPORTED)
if(OpenCV_FOUND)
  target_link_libraries(corl::opencv INTERFACE ${OpenCV_LIBS})
  target_include_directories(corl::opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
else()
  find_path(CORL_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  foreach(part ${CORL_OPENCV_PARTS})
    find_library(CORL_OPENCV_${part} opencv_${part} REQUIRED)
    target_link_libraries(corl::opencv INTERFACE ${CORL_OPENCV_${part}})
  endforeach()
  target_include_directories(corl::opencv SYSTEM INTERFACE ${CORL_OPENCV_INCLUDE_DIR})
  message(STATUS "OpenCV: ${CORL_OPENCV_INCLUDE_DIR} (${CORL_OPENCV_PARTS})")
endif()
