# vendor.cmake - the console's copy of uPlot, from its npm package: the
# minified browser build (a script defining the global uPlot) made an ES
# module by one appended export, and its stylesheet. Run in script mode:
#   cmake -DDIST=web/node_modules/uplot/dist -DOUT=build/.../vendor -P vendor.cmake
if(NOT DIST OR NOT OUT)
  message(FATAL_ERROR "vendor.cmake: pass -DDIST=... -DOUT=...")
endif()
file(READ ${DIST}/uPlot.iife.min.js js)
if(NOT js MATCHES "^/\\*! [^\n]*\\*/\nvar uPlot=")
  message(FATAL_ERROR "vendor.cmake: ${DIST}/uPlot.iife.min.js does not start with var uPlot=")
endif()
file(WRITE ${OUT}/uplot.js "${js}\nexport default uPlot;\n")
configure_file(${DIST}/uPlot.min.css ${OUT}/uplot.css COPYONLY)
