# cxx_header_test.cmake - run by ctest (unit.dev_cxx_header): compiles
# cxx_header_test.cpp with the C++ compiler CXX and fails unless it compiles
# cleanly and every symbol it leaves undefined is a plain C name (a missing
# extern "C" shows as a mangled _Z... reference that would never link).
# Arguments: -DCXX= -DSRC= -DOUT= -DNM= -DINCLUDES="dir;dir".
set(flags -std=c++11 -Wall -Wextra -Werror -pedantic)
foreach(d ${INCLUDES})
  list(APPEND flags -I${d})
endforeach()
execute_process(COMMAND ${CXX} ${flags} -c ${SRC} -o ${OUT}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CXX} cannot compile the headers as C++:\n${out}${err}")
endif()
execute_process(COMMAND ${NM} -u ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE syms ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed: ${err}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${syms}")
set(seen 0)
foreach(l ${lines})
  string(REGEX REPLACE "^ *U +" "" sym "${l}")
  if(sym MATCHES "^_Z")
    message(FATAL_ERROR "C++ reference to a mangled name (missing extern \"C\"): ${sym}")
  endif()
  if(sym MATCHES "^fotadev_|^fota_")
    math(EXPR seen "${seen} + 1")
  endif()
endforeach()
if(seen LESS 25)
  message(FATAL_ERROR "only ${seen} fotadev_/fota_ references in the C++ object:\n${syms}")
endif()
message(STATUS "${seen} C functions referenced from C++, none mangled")
