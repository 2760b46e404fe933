// A tiny test harness for the native (C++) tests, run by ctest:
//   kiln_native_tests <suite>   runs one suite; exit 0 pass, 1 fail, 77 skipped.
// KTEST(suite, name) { KCHECK(cond) << "context"; ... }  — a failed check
// records file:line and the streamed context, and the test goes on.
#pragma once
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace kt {

using TestFn = void (*)();
struct TestCase {
  const char* suite;
  const char* name;
  TestFn fn;
};
std::vector<TestCase>& registry();

struct Reg {
  Reg(const char* suite, const char* name, TestFn fn) { registry().push_back({suite, name, fn}); }
};

// Thrown by skip(): the rest of the test does not run and it counts as skipped.
struct Skip {
  std::string reason;
};
[[noreturn]] inline void skip(const std::string& reason) { throw Skip{reason}; }

// Failure bookkeeping for the running test.
void record_failure(const char* file, int line, const std::string& message);
int64_t& checks_run();

// Collects streamed context; reports on destruction if the check failed.
class Check {
 public:
  Check(bool ok, const char* file, int line, const char* expr) : ok_(ok), file_(file), line_(line), expr_(expr) {
    ++checks_run();
  }
  ~Check() {
    if (!ok_) record_failure(file_, line_, std::string(expr_) + " " + ss_.str());
  }
  template <class T>
  Check& operator<<(const T& v) {
    if (!ok_) ss_ << v;
    return *this;
  }

 private:
  bool ok_;
  const char* file_;
  int line_;
  const char* expr_;
  std::ostringstream ss_;
};

// Number of failures recorded so far in the running test (to stop a sweep early).
int failures_in_test();

}  // namespace kt

#define KTEST(suite, name)                                                     \
  static void kt_##suite##_##name();                                           \
  static ::kt::Reg kt_reg_##suite##_##name(#suite, #name, kt_##suite##_##name); \
  static void kt_##suite##_##name()

#define KCHECK(cond) ::kt::Check(static_cast<bool>(cond), __FILE__, __LINE__, "KCHECK(" #cond ")")
#define KCHECK_EQ(a, b) \
  ::kt::Check((a) == (b), __FILE__, __LINE__, "KCHECK_EQ(" #a ", " #b ")") << "[" << (a) << " vs " << (b) << "] "
