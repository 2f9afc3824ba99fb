# OpenCV's core, imgproc and imgcodecs as one target, corl::opencv.
# Debian ships OpenCVConfig.cmake only with the full libopencv-dev; the three -dev packages the
# project needs carry headers and libraries without it, so fall back to finding them directly.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
add_library(corl::opencv INTERFACE IMPORTED)
if(OpenCV_FOUND)
  target_link_libraries(corl::opencv INTERFACE ${OpenCV_LIBS})
  target_include_directories(corl::opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
else()
  find_path(CORL_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  foreach(part core imgproc imgcodecs)
    find_library(CORL_OPENCV_${part} opencv_${part} REQUIRED)
    target_link_libraries(corl::opencv INTERFACE ${CORL_OPENCV_${part}})
  endforeach()
  target_include_directories(corl::opencv SYSTEM INTERFACE ${CORL_OPENCV_INCLUDE_DIR})
  message(STATUS "OpenCV: ${CORL_OPENCV_INCLUDE_DIR} (core, imgproc, imgcodecs)")
endif()
