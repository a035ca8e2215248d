// Documents: whole UTF-8 text in, or a precise error naming the file and the byte offset.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/document.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

class DocumentTest : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) {
    path_ = (std::filesystem::temp_directory_path() / ("ts_doc_" + std::to_string(::getpid()) + ".txt")).string();
    std::ofstream(path_, std::ios::binary) << bytes;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  Error error_for(const std::string& bytes) {
    try {
      read_document(write(bytes));
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error for this document";
    return Error(Status::ok, "");
  }
  std::string path_;
};

TEST_F(DocumentTest, ReadsUtf8DroppingBomAndCrlf) {
  EXPECT_EQ(read_document(write("\xEF\xBB\xBFK\xC3\xB6ln\r\nline 2\n")), "K\xC3\xB6ln\nline 2\n");
}

TEST_F(DocumentTest, EmptyOrWhitespaceIsAnError) {
  for (const char* text : {"", "  \n\t\r\n"}) {
    Error e = error_for(text);
    EXPECT_EQ(e.status(), Status::invalid_arg);
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST_F(DocumentTest, BinaryNamesTheNulOffset) {
  Error e = error_for(std::string("PK\x03\x04\x00\x00", 6));
  EXPECT_EQ(e.status(), Status::invalid_arg);
  EXPECT_NE(std::string(e.what()).find("binary"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("offset 4"), std::string::npos) << e.what();
}

TEST_F(DocumentTest, InvalidUtf8NamesTheOffset) {
  Error e = error_for("abc\xC3(def");
  EXPECT_EQ(e.status(), Status::invalid_arg);
  EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte offset 3"), std::string::npos) << e.what();
}

TEST_F(DocumentTest, MissingFileIsAnIoError) {
  try {
    read_document("/nonexistent/dir/doc.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/doc.txt"), std::string::npos);
  }
}

TEST(Utf8Validation, RejectsOverlongsSurrogatesAndTruncation) {
  EXPECT_FALSE(find_invalid_utf8("plain ascii").has_value());
  EXPECT_FALSE(find_invalid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80").has_value());  // euro, emoji
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);      // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("ab\xF4\x90\x80\x80"), 2u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abc\xE2\x82"), 3u);        // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);               // lone continuation byte
}

}  // namespace
}  // namespace ts
